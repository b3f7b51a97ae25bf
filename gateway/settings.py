"""The gateway's one typed settings object (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.triton_replicas import parse_endpoints
from trademaster.settings import PROJECT_ROOT

Scope = Literal["predict", "admin", "metrics"]
# sha256("change-me"): the placeholder of .env examples, refused outside development.
PLACEHOLDER_KEY_SHA256 = "e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f"


class ApiKey(BaseModel):
    """An API key as stored: its SHA-256 (never the key itself) and what it may do."""

    name: str = Field(min_length=1, max_length=64)
    sha256: str
    scopes: list[Scope] = Field(default=["predict"], min_length=1)

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("sha256 must be 64 lowercase hex characters")
        return value


class Rollout(BaseModel):
    """Traffic split of one model between Triton versions (versions must be loaded)."""

    primary_version: int | None = Field(default=None, ge=1, description="None: newest ready")
    canary_version: int | None = Field(default=None, ge=1)
    canary_weight: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    shadow_version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _canary_needs_version(self) -> Rollout:
        if self.canary_weight > 0 and self.canary_version is None:
            raise ValueError("canary_weight > 0 needs canary_version")
        return self


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    triton_grpc_url: str = Field(
        default="127.0.0.1:8001",
        description="Triton replicas, comma-separated host:port; dns:///host:port is every "
        "address the name resolves to (a headless Service), re-resolved on each refresh",
    )
    triton_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # Before a worker serves: each served version's probe and a feature read (gateway/warmup.py),
    # at most this long; 0 turns the warm-up off.
    warm_up_timeout_s: float = Field(default=10.0, ge=0, le=120)
    triton_eject_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="A replica (or a version on it) that fails a call gets no calls this long",
    )
    model_refresh_interval_s: float = Field(
        default=2.0, gt=0, description="How often the served model versions are re-read"
    )
    required_models: list[str] = Field(
        default=["risk-assessment-model"], description="/ready stays 503 until these are loaded"
    )
    deployment_status_path: Path | None = Field(
        default=None,
        description="The exporter's deployment_status.json (beside the model repository): "
        "models in it that were never deployed answer 503 with the reason instead of 404",
    )

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Prediction cache")
    redis_timeout_s: float = Field(default=0.25, gt=0, le=10)
    cache_ttl_s: int = Field(default=300, ge=1)

    feature_store_root: Path = Field(
        default=PROJECT_ROOT / "feature_repo",
        description="Folder whose data/registry.db is the Feast registry",
    )
    feast_redis: str = Field(
        default="127.0.0.1:6379", description="Feast online store, host:port[,db=N]"
    )

    feast_timeout_s: float = Field(default=1.0, gt=0, le=30)
    cache_retry_after_s: float = Field(
        default=1.0, ge=0, description="After a Redis failure, skip the cache this long"
    )

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_batch_rows: int = Field(default=1_000, ge=1, le=100_000)
    max_batch_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    coalesce_batches: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Per worker, batches of concurrent /predict calls in flight at once "
        "(gateway/coalesce.py: calls arriving while all are busy go together as the next); "
        "0: every call served alone",
    )

    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='JSON list of {"name", "sha256", "scopes"}; keys are stored hashed',
    )
    metrics_require_key: bool = Field(default=False, description="/metrics needs a metrics key")
    rollouts: dict[str, Rollout] = Field(default_factory=dict)

    # The prediction log (trademaster/contract/prediction_log.py): a store of its own, never
    # the trading warehouse. Several workers write the SQLite default (WAL); production sets
    # a PostgreSQL URL.
    prediction_log_url: str | None = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'prediction_log.sqlite'}",
        description="SQLAlchemy URL of the prediction log; empty: predictions are not logged",
    )
    prediction_log_sample_rate: float = Field(
        default=1.0, ge=0.0, le=1.0, allow_inf_nan=False, description="Share of requests logged"
    )
    prediction_log_queue_size: int = Field(
        default=10_000, ge=1, description="Records held for the writer; beyond: dropped, counted"
    )
    prediction_log_batch_rows: int = Field(default=500, ge=1, le=100_000)
    prediction_log_flush_interval_s: float = Field(default=1.0, gt=0, le=60)

    @field_validator("triton_grpc_url")
    @classmethod
    def _triton_replicas(cls, value: str) -> str:
        parse_endpoints(value)  # ValueError names the bad address
        return value

    @field_validator("prediction_log_url")
    @classmethod
    def _log_url(cls, value: str | None) -> str | None:
        """Empty disables the log; anything else must parse as a URL (a typo fails at start;
        a store that is down does not)."""
        if not value:
            return None
        try:
            make_url(value)
        except ArgumentError as exc:
            raise ValueError("not a SQLAlchemy URL") from exc  # not echoed: it may hold a password
        return value

    @model_validator(mode="after")
    def _production_needs_real_keys(self) -> GatewaySettings:
        if self.environment == "production":
            if not self.api_keys:
                raise ValueError("GATEWAY_API_KEYS must list at least one key in production")
            if any(key.sha256 == PLACEHOLDER_KEY_SHA256 for key in self.api_keys):
                raise ValueError("the placeholder API key is refused in production")
        return self
