"""The daily drift check: what each champion is fed now, against its reference profile.

Two sources per model version:

- **offline**: the newest snapshot of each feature view the version's feature service reads
  (the rows ``engineer_features`` just wrote, one per user or symbol), so a change in the
  data is seen before any client asks for it;
- **served**: the feature values the gateway actually used, from its prediction log, over
  the last ``window`` (the traffic's mix as well as the data).

Each comparison is one ``drift.compare`` (every feature of the version at once, so the
multiple-testing correction spans them all). A version without a reference profile
(registered before profiles were kept) is reported as such, not guessed at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trademaster import registry
from trademaster.contract.models import ModelName
from trademaster.monitoring.drift import DriftReport, DriftSettings, compare
from trademaster.monitoring.metrics import DRIFT_STATES, BatchMetrics
from trademaster.monitoring.outcomes import input_key, served
from trademaster.monitoring.profile import PROFILE_ARTIFACT, FeatureProfile
from trademaster.monitoring.reference import calibrated
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

# The models whose training stores a reference profile of their inputs.
PROFILED_MODELS = (ModelName.RISK, ModelName.BEHAVIOR, ModelName.PRICE)
SOURCES = ("offline", "served")
SERVED_WINDOW = timedelta(hours=24)
# Daily snapshots a new profile is calibrated on (four weeks of business days).
CALIBRATION_DAYS = 20


@dataclass(frozen=True)
class Comparison:
    model_name: str
    model_version: int
    source: str
    report: DriftReport
    profile: FeatureProfile
    current: pd.DataFrame  # what was compared (for the report's figures)

    @property
    def title(self) -> str:
        return f"{self.model_name} v{self.model_version} ({self.source})"


@dataclass(frozen=True)
class ViewSnapshot:
    """The newest rows of one feature view, with the view's freshness."""

    view: str
    rows: pd.DataFrame
    newest_event: datetime | None
    ttl_s: float | None


def champion_profile(
    settings: PipelineSettings, model_name: str
) -> tuple[registry.RegisteredVersion | None, FeatureProfile | None, str]:
    """The champion, its profile, and why there is none ("" when there is)."""
    champion = registry.version_for_alias(settings, model_name, registry.CHAMPION)
    if champion is None:
        return None, None, "no champion"
    document = registry.json_artifact(settings, champion, PROFILE_ARTIFACT)
    if document is None:
        return champion, None, f"v{champion.version} has no reference profile (older version)"
    return champion, FeatureProfile.from_json(document), ""


def view_history(
    settings: PipelineSettings, days: int = 1, views: Collection[str] | None = None
) -> dict[str, list[ViewSnapshot]]:
    """The ``days`` newest daily snapshots (newest first) of every feature view, or of
    ``views`` only, from the offline files; a view whose file is missing has one empty
    snapshot."""
    from feast import FeatureView, FileSource

    from trademaster.features.store import load_definitions

    history: dict[str, list[ViewSnapshot]] = {}
    for value in vars(load_definitions()).values():
        if not isinstance(value, FeatureView) or not isinstance(value.batch_source, FileSource):
            continue
        if views is not None and value.name not in views:
            continue
        path = settings.features_dir / Path(value.batch_source.path).name
        ttl_s = value.ttl.total_seconds() if value.ttl else None
        if not path.exists():
            history[value.name] = [ViewSnapshot(value.name, pd.DataFrame(), None, ttl_s)]
            continue
        frame = pd.read_parquet(path)
        stamps = pd.to_datetime(frame["event_timestamp"], utc=True)
        day_of = stamps.dt.normalize()
        snapshots = []
        for day in sorted(day_of.unique(), reverse=True)[:days]:
            chosen = (day_of == day).to_numpy()
            newest = stamps[chosen].max().to_pydatetime()
            rows = frame[chosen].reset_index(drop=True)
            snapshots.append(ViewSnapshot(value.name, rows, newest, ttl_s))
        history[value.name] = snapshots or [ViewSnapshot(value.name, frame, None, ttl_s)]
    return history


def view_snapshots(settings: PipelineSettings) -> dict[str, ViewSnapshot]:
    """Every feature view's newest snapshot (its newest event day) from the offline files."""
    return {view: snapshots[0] for view, snapshots in view_history(settings).items()}


def calibrated_offline(
    profile: FeatureProfile, settings: PipelineSettings, days: int = CALIBRATION_DAYS
) -> FeatureProfile:
    """``profile`` calibrated on the offline data's ``days`` newest daily snapshots (at
    training time: the reference period's last days, as the daily check would see them)."""
    # Only the views the profile's service reads (a tabular model skips the price windows).
    history = view_history(settings, days, service_views(profile.feature_service))
    frames = [
        offline_frame(profile, {view: s[index] for view, s in history.items() if index < len(s)})
        for index in range(days)
    ]
    return calibrated(profile, frames)


def service_views(feature_service: str) -> dict[str, list[str]]:
    """View name -> the features the service reads from it."""
    from feast import FeatureService

    from trademaster.features.store import load_definitions

    for value in vars(load_definitions()).values():
        if isinstance(value, FeatureService) and value.name == feature_service:
            return {
                projection.name: [feature.name for feature in projection.features]
                for projection in value.feature_view_projections
            }
    raise KeyError(f"feature service {feature_service} is not in feature_repo/definitions.py")


def profiled_columns(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """``frame``'s columns for ``names``; the LSTM's flattened price window becomes its newest
    bar's features (the profile's reference is the newest bar of each training window)."""
    from trademaster.features.price_window import FEATURE_NAMES, WINDOW_COLUMN

    wanted = list(names)
    if WINDOW_COLUMN in frame.columns and set(wanted) <= set(FEATURE_NAMES):
        if frame.empty:
            return pd.DataFrame(columns=wanted, dtype=float)
        windows = np.stack(frame[WINDOW_COLUMN].to_numpy())
        last = windows[:, -len(FEATURE_NAMES) :]
        bars = pd.DataFrame(last, columns=list(FEATURE_NAMES))
        return bars[wanted]
    return frame.reindex(columns=wanted)


def offline_frame(profile: FeatureProfile, snapshots: Mapping[str, ViewSnapshot]) -> pd.DataFrame:
    """The profile's features from each view's newest snapshot, side by side (views have
    different row counts: shorter columns are padded with NaN, which compare ignores)."""
    from trademaster.features.price_window import FEATURE_NAMES, WINDOW_COLUMN

    columns: dict[str, pd.Series] = {}
    for view, features in service_views(profile.feature_service).items():
        snapshot = snapshots.get(view)
        if snapshot is None:
            continue
        # The price window view holds one array; the profile has its newest bar's features.
        readable = FEATURE_NAMES if features == [WINDOW_COLUMN] else features
        wanted = [name for name in profile.features if name in readable]
        part = profiled_columns(in_population(snapshot.rows, profile.population), wanted)
        for name in part.columns:
            columns[name] = part[name].reset_index(drop=True).astype(float)
    frame = pd.concat(columns, axis=1) if columns else pd.DataFrame()
    return frame.reindex(columns=list(profile.features))


def in_population(rows: pd.DataFrame, population: Mapping[str, float]) -> pd.DataFrame:
    """The rows the profile's population rule admits (each named column at least its
    minimum; a rule on a column the view lacks does not apply to it)."""
    keep = pd.Series(True, index=rows.index)
    for column, minimum in population.items():
        if column in rows.columns:
            keep &= rows[column] >= minimum
    return rows[keep]


def read_served_log(settings: PipelineSettings, since: datetime) -> pd.DataFrame:
    """The prediction log since ``since`` (every model: read once per check); empty when it
    cannot be read (the gateway never ran, or the store is down)."""
    from trademaster.contract.prediction_log import read_predictions

    try:
        return read_predictions(settings.resolved_prediction_log_url, since=since)
    except Exception as exc:  # a drift check must not fail on a missing log
        log.warning("prediction log unreadable: %s", exc)
        return pd.DataFrame()


def served_frame(logged: pd.DataFrame, model_name: str, version: int) -> pd.DataFrame:
    """The feature values the gateway used for ``model_name`` ``version`` in ``logged``."""
    if logged.empty:
        return pd.DataFrame()
    # Each distinct input once: a thousand requests about one user are one sample of the
    # population, not a thousand (and shadow answers were not served).
    mine = (logged["model_name"] == model_name) & (logged["model_version"] == version)
    logged = served(logged[mine])
    stamps = logged["feature_timestamps"]
    keys = [input_key(e, t) for e, t in zip(logged["entity"], stamps, strict=True)]
    logged = logged.assign(_input=keys).drop_duplicates("_input")
    if logged.empty:
        return pd.DataFrame()
    return pd.DataFrame.from_records([served_features(row) for row in logged["features"]])


def served_features(logged: Mapping[str, Any]) -> dict[str, Any]:
    """One log row's features by name; the LSTM's logged newest bar (one list) becomes its
    features, as the profile names them."""
    from trademaster.features.price_window import FEATURE_NAMES, WINDOW_COLUMN

    bar = logged.get(f"{WINDOW_COLUMN}_last_bar")
    if isinstance(bar, list) and len(bar) == len(FEATURE_NAMES):
        return dict(zip(FEATURE_NAMES, bar, strict=True))
    return dict(logged)


def check_drift(
    settings: PipelineSettings,
    drift_settings: DriftSettings | None = None,
    now: datetime | None = None,
) -> tuple[list[Comparison], dict[str, str], dict[str, ViewSnapshot]]:
    """Every profiled champion against its offline and served data; the models skipped
    with the reason; and the view snapshots (their freshness is published too)."""
    drift_settings = drift_settings or DriftSettings()
    now = now or datetime.now(UTC)
    snapshots = view_snapshots(settings)
    logged = read_served_log(settings, now - SERVED_WINDOW)
    comparisons: list[Comparison] = []
    skipped: dict[str, str] = {}
    for name in PROFILED_MODELS:
        champion, profile, reason = champion_profile(settings, name)
        if champion is None or profile is None:
            skipped[name] = reason
            log.info("drift %s: skipped (%s)", name, reason)
            continue
        current = {
            "offline": offline_frame(profile, snapshots),
            "served": in_population(
                served_frame(logged, name, champion.version),
                profile.population,
            ),
        }
        for source, frame in current.items():
            frame = frame.reindex(columns=list(profile.features))
            report = compare(profile, frame, drift_settings)
            comparisons.append(Comparison(name, champion.version, source, report, profile, frame))
            log.info(
                "drift %s v%d %s: %d rows, drifted: %s",
                name,
                champion.version,
                source,
                len(frame),
                ", ".join(f.feature for f in report.drifted_features) or "none",
            )
    return comparisons, skipped, snapshots


def record_metrics(
    metrics: BatchMetrics,
    comparisons: Iterable[Comparison],
    snapshots: Mapping[str, ViewSnapshot],
    checked_at: float | None = None,
) -> None:
    checked_at = time.time() if checked_at is None else checked_at
    for item in comparisons:
        version = str(item.model_version)
        for feature in item.report.features:
            labels = (item.model_name, version, feature.feature, item.source)
            for state in DRIFT_STATES:
                metrics.drift_state.labels(*labels, state).set(float(feature.state == state))
            metrics.drift_samples.labels(*labels).set(feature.samples)
            if feature.score is not None:
                metrics.drift_score.labels(*labels, feature.method).set(feature.score)
                metrics.drift_threshold.labels(*labels, feature.method).set(feature.threshold)
            if feature.psi is not None:
                metrics.drift_psi.labels(*labels).set(feature.psi)
        share = item.report.drift_share
        if share is not None:
            metrics.drift_share.labels(item.model_name, version, item.source).set(share)
        metrics.drift_checked.labels(item.model_name, version, item.source).set(checked_at)
    for snapshot in snapshots.values():
        if snapshot.newest_event is not None:
            metrics.newest_event.labels(snapshot.view).set(snapshot.newest_event.timestamp())
        if snapshot.ttl_s is not None:
            metrics.view_ttl.labels(snapshot.view).set(snapshot.ttl_s)


def summary(comparisons: Iterable[Comparison]) -> dict[str, Any]:
    """The task's XCom: per comparison, the drifted features and the counts by state."""
    out: dict[str, Any] = {}
    for item in comparisons:
        states = [feature.state for feature in item.report.features]
        out[item.title] = {
            "drifted": [feature.feature for feature in item.report.drifted_features],
            **{state: states.count(state) for state in DRIFT_STATES},
            "drift_share": item.report.drift_share,
        }
    return out
