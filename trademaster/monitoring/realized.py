"""Realized accuracy: the quality of served answers against their later outcomes, per model
version, beside the quality the version was validated with.

The gateway's prediction log says what each version answered; the warehouse, later, what
was true (``trademaster.monitoring.outcomes`` joins them, one model at a time). Per version
and metric the task publishes the realized value, the validated value of the version's
MLflow run (the same definition), the shortfall (positive: worse, in the metric's units), the
margin tolerated before ``RealizedQualityDropped`` fires, and with every figure the rows it
rests on, label coverage and label delay.

| model | realized | validated (MLflow run metric) |
|---|---|---|
| risk-assessment-model | ``auc`` of P(loss) vs the position's label | ``holdout_auc`` |
| behavioral-pattern-classifier | ``macro_f1`` vs the archetype | ``holdout_macro_f1`` |
| price-prediction-lstm | ``interval_coverage`` of [lower, upper] | ``overall_coverage`` |
| | ``directional_accuracy`` | ``overall_directional_accuracy`` |
| | ``mae`` (log-return units) | none: the walk-forward logs RMSE |
| sentiment-analyzer | ``macro_f1`` vs the headline's label | ``holdout_macro_f1`` |

The LSTM's validated figures are pooled in volatility units; coverage and direction do not
depend on the scale, so they compare as they are. Its MAE has no validated counterpart and
is published alone (no shortfall: it cannot alert). Interval coverage is judged on both
sides of its nominal level: the shortfall is how much farther from the level (0.90) the
realized coverage is than the validated one, so an interval too wide counts as well.

Small samples: below ``min_labelled`` labelled rows a metric has no value (explicit, in the
result's ``note``; rows and coverage are still published). Each value comes with a 90%
percentile-bootstrap interval that resamples the dependent groups whole (users; market
days for the LSTM); the alert uses the point value, the interval goes into the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, mean_absolute_error, roc_auc_score

from trademaster import registry
from trademaster.contract.models import ModelName
from trademaster.contract.parameters import INTERVAL_LEVEL
from trademaster.monitoring import outcomes
from trademaster.monitoring.metrics import BatchMetrics
from trademaster.monitoring.outcomes import RiskLabeller
from trademaster.settings import PipelineSettings
from trademaster.training import gates
from trademaster.warehouse.headlines import LABELS as SENTIMENT_CLASSES
from trademaster.warehouse.users import ARCHETYPES

log = logging.getLogger(__name__)

BEHAVIOR_CLASSES = tuple(archetype.name for archetype in ARCHETYPES)
# The Pushgateway group of the task (``publish.push(settings, metrics, PUSH_TASK)``).
PUSH_TASK = "realized"

Direction = Literal["higher", "lower", "nominal"]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the ``metric`` label
    validated: str | None  # the version's MLflow run metric of the same definition
    direction: Direction  # higher / lower is better, or closest to the nominal level


MODEL_METRICS: Mapping[str, tuple[MetricSpec, ...]] = {
    ModelName.RISK: (MetricSpec("auc", "holdout_auc", "higher"),),
    ModelName.BEHAVIOR: (MetricSpec("macro_f1", "holdout_macro_f1", "higher"),),
    ModelName.PRICE: (
        MetricSpec("mae", None, "lower"),
        MetricSpec("interval_coverage", "overall_coverage", "nominal"),
        MetricSpec("directional_accuracy", "overall_directional_accuracy", "higher"),
    ),
    ModelName.SENTIMENT: (MetricSpec("macro_f1", "holdout_macro_f1", "higher"),),
}

# Method constants (the operator's knobs are PipelineSettings' ``realized_*`` fields).
RISK_MATCH_WINDOW = timedelta(days=1)
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.90


@dataclass(frozen=True)
class RealizedSettings:
    """How realized quality is measured and when it alerts: ``from_settings``."""

    lookback: timedelta  # logged answers this old or newer are joined
    min_labelled: int  # fewer labelled rows: no value for the metric
    margins: Mapping[str, float]  # metric -> shortfall tolerated before the alert
    risk_match_window: timedelta = RISK_MATCH_WINDOW  # answer -> the position it assessed
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES
    bootstrap_confidence: float = BOOTSTRAP_CONFIDENCE

    @classmethod
    def from_settings(cls, settings: PipelineSettings, **overrides: Any) -> RealizedSettings:
        """The pipeline's settings: one margin for every metric that has a validated
        counterpart, unless ``realized_margin_by_metric`` names one."""
        compared = {
            spec.name for specs in MODEL_METRICS.values() for spec in specs if spec.validated
        }
        unknown = set(settings.realized_margin_by_metric) - compared
        if unknown:
            raise ValueError(
                f"realized_margin_by_metric names {sorted(unknown)}; "
                f"the metrics with a validated figure are {sorted(compared)}"
            )
        margins = {name: settings.realized_margin for name in sorted(compared)}
        values: dict[str, Any] = {
            "lookback": timedelta(days=settings.realized_lookback_days),
            "min_labelled": settings.realized_min_labelled,
            "margins": margins | dict(settings.realized_margin_by_metric),
        }
        return cls(**(values | overrides))


@dataclass(frozen=True)
class VersionReference:
    """What the registry says of a version: its run's metrics and the population rule of
    its reference profile (the rows its validated figure was measured on)."""

    validated: Mapping[str, float] = field(default_factory=dict)
    population: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelStatus:
    """One version's observations by label state at ``now``."""

    labelled: int
    pending: int  # outcome not due yet: left out of coverage
    missing: int  # due, and no outcome
    delay_s: float | None  # median prediction -> outcome known, over the labelled

    @property
    def coverage(self) -> float | None:
        due = self.labelled + self.missing
        return self.labelled / due if due else None


@dataclass(frozen=True)
class RealizedResult:
    model_name: str
    model_version: int
    metric: str
    value: float | None  # None: see ``note``
    interval: tuple[float, float] | None  # bootstrap interval of ``value``
    validated: float | None
    validated_metric: str | None
    shortfall: float | None  # positive: worse than validated, in the metric's units
    margin: float | None  # with a shortfall only: the alert's tolerance
    metric_rows: int  # labelled rows the metric was computed on
    labels: LabelStatus
    routes: tuple[str, ...]
    note: str = ""  # why there is no value or no validated figure

    @property
    def rows(self) -> int:
        return self.labels.labelled

    @property
    def label_coverage(self) -> float | None:
        return self.labels.coverage

    @property
    def label_delay_s(self) -> float | None:
        return self.labels.delay_s

    @property
    def breached(self) -> bool:
        """Whether ``RealizedQualityDropped`` would fire on this figure."""
        return (
            self.shortfall is not None
            and self.margin is not None
            and (self.shortfall > self.margin)
        )

    @property
    def title(self) -> str:
        return f"{self.model_name} v{self.model_version} {self.metric}"


# --- label states ------------------------------------------------------------------------


def known_by(observations: pd.DataFrame, now: datetime) -> np.ndarray:
    known = pd.to_datetime(observations["known_at"], utc=True)
    return np.asarray(known.notna() & (known <= pd.Timestamp(now)))


def label_status(observations: pd.DataFrame, now: datetime) -> LabelStatus:
    if observations.empty:
        return LabelStatus(0, 0, 0, None)
    known = pd.to_datetime(observations["known_at"], utc=True)
    labelled = known_by(observations, now)
    later = np.asarray(known.notna()) & ~labelled  # known after ``now`` (a replayed run)
    pending = ~labelled & (~observations["due"].to_numpy(bool) | later)
    missing = ~labelled & ~pending
    delay = (known - pd.to_datetime(observations["logged_at"], utc=True)).dt.total_seconds()
    delays = delay[labelled].clip(lower=0.0)
    return LabelStatus(
        int(labelled.sum()),
        int(pending.sum()),
        int(missing.sum()),
        float(delays.median()) if len(delays) else None,
    )


# --- metrics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    value: float | None
    used: np.ndarray  # which labelled rows the metric was computed on
    weighted: Callable[[np.ndarray], np.ndarray] | None = None  # bootstrap weights -> values
    note: str = ""

    @property
    def rows(self) -> int:
        return int(self.used.sum())


def measure(metric: str, labelled: pd.DataFrame, classes: tuple[str, ...] = ()) -> Measured:
    """``metric`` on labelled observations: the value (sklearn's where it has the metric)
    and the same metric under bootstrap weights."""
    truth, predicted = labelled["truth"], labelled["predicted"]
    if metric == "auc":
        used = truth.notna().to_numpy() & predicted.notna().to_numpy()
        y = truth[used].to_numpy(np.int64)
        scores = predicted[used].to_numpy(np.float64)
        if len(np.unique(y)) < 2:
            return Measured(None, used, note="outcomes of one class only: AUC is undefined")
        value = roc_auc_score(y, scores)
        return Measured(float(value), used, lambda w: gates.weighted_auc(y, scores, w))
    if metric == "macro_f1":
        index = {name: position for position, name in enumerate(classes)}
        y_all, p_all = truth.map(index), predicted.map(index)
        used = (y_all.notna() & p_all.notna()).to_numpy()
        if not used.any():
            note = "the prediction log holds no predicted class" if truth.notna().any() else ""
            return Measured(None, used, note=note)
        y, p = y_all[used].to_numpy(np.int64), p_all[used].to_numpy(np.int64)
        f1 = gates.weighted_macro_f1(len(classes))
        # Every class, an absent one scoring 0: the validated figures' definition.
        value = f1_score(y, p, labels=range(len(classes)), average="macro", zero_division=0)
        return Measured(float(value), used, lambda w: f1(y, p, w))
    values = np.asarray(truth, np.float64)
    forecast = np.asarray(predicted, np.float64)
    if metric == "mae":
        used = np.isfinite(values) & np.isfinite(forecast)
        if not used.any():
            return Measured(None, used)
        errors = np.abs(values[used] - forecast[used])
        value = mean_absolute_error(values[used], forecast[used])
        return Measured(float(value), used, _mean_of(errors))
    if metric == "interval_coverage":
        lower = np.asarray(labelled["lower"], np.float64)
        upper = np.asarray(labelled["upper"], np.float64)
        used = np.isfinite(values) & np.isfinite(lower) & np.isfinite(upper)
        inside = (values >= lower) & (values <= upper)
        return _mean_measured(inside[used].astype(np.float64), used)
    if metric == "directional_accuracy":
        # As the walk-forward scores it: moves only; a zero forecast calls no direction (1/2).
        used = np.isfinite(values) & np.isfinite(forecast) & (values != 0)
        hits = np.where(forecast == 0, 0.5, np.sign(forecast) == np.sign(values))
        return _mean_measured(hits[used].astype(np.float64), used)
    raise KeyError(f"unknown realized metric {metric!r}")


def _mean_of(per_row: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda w: gates.weighted_mean(per_row, per_row, w)


def _mean_measured(per_row: np.ndarray, used: np.ndarray) -> Measured:
    if not len(per_row):
        return Measured(None, used)
    return Measured(float(per_row.mean()), used, _mean_of(per_row))


def bootstrap_interval(
    weighted: Callable[[np.ndarray], np.ndarray],
    groups: np.ndarray | None,
    rows: int,
    resamples: int,
    confidence: float,
) -> tuple[float, float] | None:
    """Percentile interval of ``weighted`` over resamples of rows (whole groups if given)."""
    values = np.concatenate(
        [
            weighted(w)
            for w in gates.bootstrap_weights(rows, groups, resamples, gates.BOOTSTRAP_SEED)
        ]
    )
    if not np.isfinite(values).any():
        return None
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def shortfall(
    direction: Direction, value: float, validated: float, level: float = INTERVAL_LEVEL
) -> float:
    """How much worse ``value`` is than ``validated`` (positive: worse)."""
    if direction == "higher":
        return validated - value
    if direction == "lower":
        return value - validated
    return abs(value - level) - abs(validated - level)


# --- one version ---------------------------------------------------------------------------


def version_results(
    model_name: str,
    version: int,
    observations: pd.DataFrame,
    reference: VersionReference,
    config: RealizedSettings,
    now: datetime,
) -> list[RealizedResult]:
    """Every metric of ``model_name`` for one version's observations."""
    status = label_status(observations, now)
    labelled = observations[known_by(observations, now)] if len(observations) else observations
    classes = BEHAVIOR_CLASSES if model_name == ModelName.BEHAVIOR else SENTIMENT_CLASSES
    routes = tuple(sorted(set(observations["route"]))) if len(observations) else ()
    out = []
    for spec in MODEL_METRICS[model_name]:
        measured = (
            measure(spec.name, labelled, classes)
            if len(labelled)
            else Measured(None, np.zeros(0, bool))
        )
        value, interval, note = measured.value, None, measured.note
        if value is not None and measured.rows < config.min_labelled:
            value = None
            note = f"insufficient data: {measured.rows} labelled rows, {config.min_labelled} needed"
        elif value is None and not note:
            note = "no labelled rows"
        if value is not None and measured.weighted is not None:
            interval = bootstrap_interval(
                measured.weighted,
                _groups(labelled, measured.used),
                measured.rows,
                config.bootstrap_resamples,
                config.bootstrap_confidence,
            )
        validated = reference.validated.get(spec.validated) if spec.validated else None
        if spec.validated is None:
            note = note or "no validated counterpart"
        gap = margin = None
        if value is not None and validated is not None:
            level = _nominal_level(labelled)
            gap = shortfall(spec.direction, value, float(validated), level)
            margin = config.margins.get(spec.name)
        out.append(
            RealizedResult(
                model_name,
                version,
                spec.name,
                value,
                interval,
                None if validated is None else float(validated),
                spec.validated,
                gap,
                margin,
                measured.rows,
                status,
                routes,
                note,
            )
        )
    return out


def _groups(labelled: pd.DataFrame, used: np.ndarray) -> np.ndarray | None:
    """The bootstrap's clusters of the rows a metric used (None: rows are independent)."""
    groups = labelled["group"][used]
    if groups.isna().all():
        return None
    return groups.astype(str).to_numpy()


def _nominal_level(labelled: pd.DataFrame) -> float:
    if "level" not in labelled:
        return INTERVAL_LEVEL
    levels = pd.to_numeric(labelled["level"], errors="coerce").dropna()
    return float(levels.median()) if len(levels) else INTERVAL_LEVEL


# --- every model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WarehouseFrames:
    """The warehouse tables the joins read (None: not read, no model needs it)."""

    trades: pd.DataFrame | None = None
    daily: pd.DataFrame | None = None  # ``market.daily_bars`` of market_data
    market_data: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    headlines: pd.DataFrame | None = None


def observations_for(
    model_name: str,
    logged: pd.DataFrame,
    frames: WarehouseFrames,
    reference: VersionReference,
    risk_labels: RiskLabeller,
    risk_horizon_days: int,
    risk_loss_threshold: float,
    config: RealizedSettings,
) -> pd.DataFrame:
    """The model's outcome join on one version's logged rows."""
    if model_name == ModelName.RISK:
        assert frames.trades is not None
        assert frames.daily is not None
        return outcomes.risk_outcomes(
            logged,
            frames.trades,
            frames.daily,
            risk_labels,
            risk_horizon_days,
            risk_loss_threshold,
            config.risk_match_window,
        )
    if model_name == ModelName.BEHAVIOR:
        assert frames.users is not None
        return outcomes.behavior_outcomes(logged, frames.users, reference.population)
    if model_name == ModelName.PRICE:
        assert frames.market_data is not None
        return outcomes.price_outcomes(logged, frames.market_data)
    if model_name == ModelName.SENTIMENT:
        assert frames.headlines is not None
        return outcomes.sentiment_outcomes(logged, frames.headlines)
    raise KeyError(f"{model_name} has no outcome join")


def evaluate(
    predictions: pd.DataFrame,
    frames: WarehouseFrames,
    references: Mapping[tuple[str, int], VersionReference],
    *,
    risk_labels: RiskLabeller,
    risk_horizon_days: int,
    risk_loss_threshold: float,
    config: RealizedSettings,
    now: datetime | None = None,
) -> list[RealizedResult]:
    """Results of every served version in ``predictions`` (pure: no store is read)."""
    now = now or datetime.now(UTC)
    served = outcomes.served(predictions)
    results: list[RealizedResult] = []
    for model_name in MODEL_METRICS:
        rows = served[served["model_name"] == model_name] if len(served) else served
        for version, version_rows in rows.groupby("model_version", sort=True):
            reference = references.get((model_name, int(version)), VersionReference())
            observed = observations_for(
                model_name,
                version_rows.reset_index(drop=True),
                frames,
                reference,
                risk_labels,
                risk_horizon_days,
                risk_loss_threshold,
                config,
            )
            found = version_results(str(model_name), int(version), observed, reference, config, now)
            for result in found:
                log.info(
                    "realized %s: %s (validated %s; %d rows, coverage %s) %s",
                    result.title,
                    _fmt(result.value),
                    _fmt(result.validated),
                    result.metric_rows,
                    _fmt(result.label_coverage),
                    result.note,
                )
            results.extend(found)
    return results


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# --- reading the stores --------------------------------------------------------------------

# What each join reads from the warehouse.
TABLES: Mapping[str, tuple[str, ...]] = {
    ModelName.RISK: ("trades", "daily"),
    ModelName.BEHAVIOR: ("users",),
    ModelName.PRICE: ("market_data",),
    ModelName.SENTIMENT: ("headlines",),
}


def read_frames(
    settings: PipelineSettings, models: Iterable[str], trades_since: pd.Timestamp | None = None
) -> WarehouseFrames:
    """The warehouse tables ``models``' joins need, each read once; of the trades only those
    from ``trades_since`` on (the first logged answer: an answer is matched to a position
    opened after it), selected in SQL."""
    from trademaster.warehouse import schema
    from trademaster.warehouse.market import daily_bars
    from trademaster.warehouse.read import read_table, read_trades_since

    wanted = {table for model in models for table in TABLES.get(model, ())}
    market = None
    if wanted & {"market_data", "daily"}:
        market = read_table(settings, schema.market_data)
    return WarehouseFrames(
        trades=read_trades_since(settings, trades_since) if "trades" in wanted else None,
        daily=daily_bars(market) if market is not None and "daily" in wanted else None,
        market_data=market if "market_data" in wanted else None,
        users=read_table(settings, schema.users) if "users" in wanted else None,
        headlines=read_table(settings, schema.headlines) if "headlines" in wanted else None,
    )


def version_reference(
    settings: PipelineSettings, model_name: str, version: int
) -> VersionReference:
    """The version's validated metrics and its profile's population (empty when the registry
    does not have the version, e.g. a store reset since it was served)."""
    from trademaster.monitoring.profile import PROFILE_ARTIFACT, FeatureProfile

    found = registry.registered_version(settings, model_name, version)
    if found is None:
        log.warning("%s v%d is not in the registry: no validated figures", model_name, version)
        return VersionReference()
    document = registry.json_artifact(settings, found, PROFILE_ARTIFACT)
    population = FeatureProfile.from_json(document).population if document else {}
    return VersionReference(registry.run_metrics(settings, found.run_id), population)


def realized_quality(
    settings: PipelineSettings,
    predictions: pd.DataFrame | None = None,
    now: datetime | None = None,
    *,
    risk_labels: RiskLabeller,
    config: RealizedSettings | None = None,
) -> list[RealizedResult]:
    """Realized quality of every version served over ``config.lookback`` up to ``now``.

    ``predictions``: the logged rows (read from ``settings``' prediction log when None).
    ``risk_labels``: the risk model's label (``trademaster.risk.labels.adverse_move_labels``;
    passed in because model packages sit above monitoring)."""
    from trademaster.contract.prediction_log import read_predictions

    config = config or RealizedSettings.from_settings(settings)
    now = now or datetime.now(UTC)
    if predictions is None:
        try:
            predictions = read_predictions(
                settings.resolved_prediction_log_url, since=now - config.lookback, until=now
            )
        except Exception as exc:  # the store is down: reported, never fails the pipeline
            log.warning("prediction log unreadable: %s", exc)
            return []
    served = outcomes.served(predictions)
    served = served[served["logged_at"] <= pd.Timestamp(now)] if len(served) else served
    versions = (
        sorted(
            {
                (str(m), int(v))
                for m, v in zip(served["model_name"], served["model_version"], strict=True)
            }
        )
        if len(served)
        else []
    )
    versions = [(model, version) for model, version in versions if model in MODEL_METRICS]
    if not versions:
        log.info(
            "realized: no served answers of a model with outcomes since %s", now - config.lookback
        )
        return []
    references = {key: version_reference(settings, *key) for key in versions}
    frames = read_frames(settings, {model for model, _ in versions}, served["logged_at"].min())
    return evaluate(
        served,
        frames,
        references,
        risk_labels=risk_labels,
        risk_horizon_days=settings.risk_horizon_days,
        risk_loss_threshold=settings.risk_loss_threshold,
        config=config,
        now=now,
    )


# --- publishing ----------------------------------------------------------------------------


def record_metrics(metrics: BatchMetrics, results: Iterable[RealizedResult]) -> None:
    """The results as the batch gauges. A metric without a value publishes no quality (its
    rows and coverage say why); shortfall and margin only where both figures exist."""
    for result in results:
        labels = (result.model_name, str(result.model_version), result.metric)
        if result.value is not None:
            metrics.realized_quality.labels(*labels).set(result.value)
        if result.validated is not None:
            metrics.validated_quality.labels(*labels).set(result.validated)
        if result.shortfall is not None and result.margin is not None:
            metrics.realized_shortfall.labels(*labels).set(result.shortfall)
            metrics.realized_margin.labels(*labels).set(result.margin)
        version = labels[:2]
        metrics.realized_rows.labels(*version).set(result.rows)
        if result.label_coverage is not None:
            metrics.label_coverage.labels(*version).set(result.label_coverage)
        if result.label_delay_s is not None:
            metrics.label_delay.labels(*version).set(result.label_delay_s)


def summary(results: Iterable[RealizedResult]) -> dict[str, Any]:
    """The task's XCom and report: per version and metric, every figure and the interval."""
    return {
        result.title: {
            "value": result.value,
            "interval": list(result.interval) if result.interval else None,
            "validated": result.validated,
            "validated_metric": result.validated_metric,
            "shortfall": result.shortfall,
            "margin": result.margin,
            "breached": result.breached,
            "rows": result.metric_rows,
            "labelled": result.labels.labelled,
            "pending": result.labels.pending,
            "missing": result.labels.missing,
            "label_coverage": result.label_coverage,
            "label_delay_s": result.label_delay_s,
            "routes": list(result.routes),
            "note": result.note,
        }
        for result in results
    }
