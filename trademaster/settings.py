"""Typed settings of the training pipeline (warehouse, features, training, export).

Every value comes from the environment (prefix ``TRADEMASTER_``) or ``.env``; the embedded
defaults are local files under ``data_dir`` so the whole pipeline runs on one machine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRADEMASTER_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(
        default=Path("var"), description="Working data: warehouse, parquet, Feast, MLflow."
    )
    warehouse_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a sqlite file in data_dir."
    )

    # Synthetic data generation (real OHLCV files are always loaded as well).
    seed: int = 7
    n_users: int = Field(default=2_000, ge=20)
    n_trades: int = Field(default=100_000, ge=500)
    n_generated_symbols: int = Field(default=60, ge=5)
    history_business_days: int = Field(default=520, ge=160)
    trade_window_business_days: int = Field(default=252, ge=60)
    end_date: date | None = Field(
        default=None, description="Last daily bar; empty means yesterday (UTC)."
    )

    # Extraction from the warehouse (daily aggregates kept under data_dir/extract).
    extract_history_days: int = Field(
        default=730,
        ge=120,
        description="Days of trades before the newest one the first extraction reads (bars: "
        "that plus the features' warm-up, before each symbol's newest bar).",
    )
    extract_lookback_days: int = Field(
        default=5,
        ge=0,
        description="Days before the last extraction's newest day that each run reads again, "
        "for rows that arrive late.",
    )

    # Training sets at scale: above these, a fixed sample (README, "The pipeline").
    risk_max_training_trades: int = Field(
        default=100_000,
        ge=1_000,
        description="Opening trades the risk model trains and is validated on; above it every "
        "k-th position (position_id divisible by k, the smallest k that fits).",
    )
    behavior_max_training_users: int = Field(
        default=10_000,
        ge=100,
        description="Users whose snapshots the behaviour model trains and is validated on; "
        "above it every k-th user (user_id divisible by k).",
    )

    # Feature engineering: embedded (numpy, bounded chunks of users) or on a Spark cluster.
    spark_master: str = Field(
        default="",
        description="Spark master URL (spark://spark-master:7077, local[2]) to compute the user "
        "features on; empty: embedded. The cluster must read and write data_dir (shared storage).",
    )

    # Risk model label: position loses >= threshold of its margin within the horizon.
    risk_horizon_days: int = Field(default=10, ge=1)
    risk_loss_threshold: float = Field(default=0.10, gt=0, lt=1)

    # Feast: definitions and feature_store.yaml live in the project's feature_repo/; the
    # offline parquet files and the registry go under <feature_store_root>/data/.
    feature_store_root: Path = PROJECT_ROOT / "feature_repo"
    online_store_redis: str = Field(
        default="127.0.0.1:6379", description="Feast Redis connection string (host:port[,db=N])."
    )

    # MLflow.
    mlflow_tracking_uri: str = Field(default="", description="Empty means sqlite in data_dir.")
    mlflow_experiment: str = "trademaster-training"

    # Triton model repository written by the exporter.
    model_repository: Path = PROJECT_ROOT / "model_repository"
    triton_url: str = Field(
        default="", description="Triton HTTP host:port to load the champions into; empty: skip."
    )
    parity_tolerance: float = Field(
        default=1e-4,
        gt=0,
        description="Largest max abs difference an exported graph (ONNX, TorchScript) may "
        "have from its torch model on real rows before the exporter refuses to publish it.",
    )

    # Airflow (local dag.test runs).
    airflow_retry_delay_s: int = Field(default=5, ge=0)

    # Canary rollout of a new champion through the running gateway (empty URL: no canary,
    # a new version is served as soon as Triton loads it).
    gateway_url: str = Field(default="", description="Gateway base URL, e.g. http://host:8080")
    gateway_api_key: SecretStr = Field(
        default=SecretStr(""), description="Key with the admin and metrics scopes"
    )
    gateway_propagation_s: float = Field(
        default=5.0,
        ge=0,
        description="Until every gateway worker applies a rollout change (their refresh, 2 s)",
    )
    canary_weight: float = Field(default=0.25, gt=0, lt=1, description="Share of users")
    canary_min_requests: int = Field(
        default=100, ge=10, description="Canary answers the analysis waits for"
    )
    canary_max_wait_s: float = Field(
        default=600, gt=0, description="Then it decides on what it has, or rolls back"
    )
    canary_max_error_rate: float = Field(default=0.01, ge=0, lt=1)
    canary_max_latency_ratio: float = Field(
        default=2.0, gt=1, description="Canary p90 latency over the primary's"
    )
    canary_max_disagreement: float = Field(
        default=0.25, gt=0, description="Mean |canary - champion| on the same inputs"
    )

    # Monitoring: the gateway's prediction log (drift of served features, realized accuracy)
    # and the Pushgateway the DAG's monitoring tasks publish to.
    prediction_log_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a sqlite file in data_dir."
    )
    pushgateway_url: str = Field(
        default="", description="Pushgateway host:port; empty: batch metrics are not pushed."
    )
    realized_lookback_days: int = Field(
        default=30, ge=1, description="Served answers this recent are joined with outcomes."
    )
    realized_min_labelled: int = Field(
        default=50, ge=1, description="Fewer labelled answers: a realized metric has no value."
    )
    realized_margin: float = Field(
        default=0.05,
        gt=0,
        description="RealizedQualityDropped fires when realized quality is this much worse than "
        "validated (in the metric's units: AUC, macro-F1, coverage, directional accuracy).",
    )
    realized_margin_by_metric: dict[str, float] = Field(
        default_factory=dict,
        description='Per-metric margins over realized_margin, e.g. {"interval_coverage": 0.03}.',
    )

    # Training.
    train_epochs: int = Field(default=25, ge=1)
    min_auc_lift: float = Field(
        default=0.02, description="A model must beat the prevalence baseline AUC by this much."
    )

    @model_validator(mode="after")
    def _trades_fit_users(self) -> PipelineSettings:
        if self.trade_window_business_days >= self.history_business_days - 60:
            raise ValueError(
                "trade_window_business_days must leave at least 60 days of price history "
                "before the first trade (feature warm-up)"
            )
        return self

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.resolve()

    @property
    def resolved_end_date(self) -> date:
        return self.end_date or (datetime.now(UTC).date() - timedelta(days=1))

    @property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"sqlite:///{self.resolved_data_dir / 'warehouse.db'}"

    @property
    def resolved_prediction_log_url(self) -> str:
        return (
            self.prediction_log_url
            or f"sqlite:///{self.resolved_data_dir / 'prediction_log.sqlite'}"
        )

    @property
    def features_dir(self) -> Path:
        return self.feature_store_root.resolve() / "data"

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.resolved_data_dir / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.resolved_data_dir / "mlflow" / "artifacts"

    @property
    def airflow_home(self) -> Path:
        return self.resolved_data_dir / "airflow"
