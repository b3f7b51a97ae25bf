"""Every Prometheus metric the batch side (the DAG's monitoring tasks) publishes, declared once.

The tasks fill a fresh ``CollectorRegistry`` (``batch_registry()``) and push it to the
Pushgateway, one group per task (``push``), so a later run replaces its own series and no
other's. Rules and dashboards in ``monitoring/`` query these names; tests/unit/deploy checks
that every name they use is declared here, in gateway/metrics.py, by Triton or by a rule.

Labels are bounded: model names and feature names come from the catalog and the feature
services, versions from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge

# The Pushgateway job every batch group is pushed under (``grouping_key`` tells tasks apart).
PUSH_JOB = "trademaster-batch"

# The explicit states of one feature's drift check (an enum-style gauge: 1 for the current).
DRIFT_STATES = ("drift", "no_drift", "insufficient_data")


@dataclass(frozen=True)
class BatchMetrics:
    """The batch metric objects, bound to one registry."""

    registry: CollectorRegistry
    # --- drift: per model version, feature and source (served: the prediction log; offline:
    # the newest day's offline features), against the version's reference profile.
    drift_state: Gauge
    drift_score: Gauge
    drift_threshold: Gauge
    drift_psi: Gauge
    drift_samples: Gauge
    drift_share: Gauge
    drift_checked: Gauge
    # --- realized accuracy: logged predictions joined with their later outcomes.
    realized_quality: Gauge
    validated_quality: Gauge
    realized_shortfall: Gauge
    realized_margin: Gauge
    label_coverage: Gauge
    label_delay: Gauge
    realized_rows: Gauge
    # --- freshness of the features, per feature view.
    newest_event: Gauge
    view_ttl: Gauge
    # --- the training DAG itself.
    dag_last_success: Gauge
    dag_last_failure: Gauge
    dag_run_duration: Gauge


def batch_registry() -> BatchMetrics:
    registry = CollectorRegistry()
    drift = ["model_name", "model_version", "feature", "source"]
    quality = ["model_name", "model_version", "metric"]
    return BatchMetrics(
        registry=registry,
        drift_state=Gauge(
            "ml_feature_drift_state",
            "1 for the feature's current drift state (drift, no_drift, insufficient_data)",
            [*drift, "state"],
            registry=registry,
        ),
        drift_score=Gauge(
            "ml_feature_drift_score",
            "The drift statistic (its method label: ks p-value, normed wasserstein, "
            "jensenshannon distance)",
            [*drift, "method"],
            registry=registry,
        ),
        drift_threshold=Gauge(
            "ml_feature_drift_threshold",
            "The threshold the statistic is compared with (after correction for many features)",
            [*drift, "method"],
            registry=registry,
        ),
        drift_psi=Gauge(
            "ml_feature_drift_psi",
            "Population stability index against the reference profile",
            drift,
            registry=registry,
        ),
        drift_samples=Gauge(
            "ml_feature_drift_samples", "Current rows compared", drift, registry=registry
        ),
        drift_share=Gauge(
            "ml_feature_drift_share",
            "Share of a model version's checked features that drifted",
            ["model_name", "model_version", "source"],
            registry=registry,
        ),
        drift_checked=Gauge(
            "ml_feature_drift_checked_timestamp_seconds",
            "When the drift check ran",
            ["model_name", "model_version", "source"],
            registry=registry,
        ),
        realized_quality=Gauge(
            "ml_realized_quality",
            "Quality of served predictions against their outcomes (auc, macro_f1, mae, "
            "interval_coverage, directional_accuracy)",
            quality,
            registry=registry,
        ),
        validated_quality=Gauge(
            "ml_validated_quality",
            "The same metric measured on the holdout when the version was validated",
            quality,
            registry=registry,
        ),
        realized_shortfall=Gauge(
            "ml_realized_quality_shortfall",
            "How much worse realized is than validated (positive: worse, in the metric's units)",
            quality,
            registry=registry,
        ),
        realized_margin=Gauge(
            "ml_realized_quality_margin",
            "The shortfall tolerated before RealizedQualityDropped fires (settings)",
            quality,
            registry=registry,
        ),
        label_coverage=Gauge(
            "ml_label_coverage",
            "Share of logged predictions old enough to be labelled that have an outcome",
            ["model_name", "model_version"],
            registry=registry,
        ),
        label_delay=Gauge(
            "ml_label_delay_seconds",
            "Median time from a prediction to its outcome being known",
            ["model_name", "model_version"],
            registry=registry,
        ),
        realized_rows=Gauge(
            "ml_realized_predictions",
            "Logged predictions joined with an outcome",
            ["model_name", "model_version"],
            registry=registry,
        ),
        newest_event=Gauge(
            "ml_feature_view_newest_event_timestamp_seconds",
            "Event time of the newest row of the feature view (its data's age is time() - this)",
            ["feature_view"],
            registry=registry,
        ),
        view_ttl=Gauge(
            "ml_feature_view_ttl_seconds",
            "The feature view's ttl: older online features count as stale",
            ["feature_view"],
            registry=registry,
        ),
        dag_last_success=Gauge(
            "trademaster_dag_last_success_timestamp_seconds",
            "When the DAG last finished successfully",
            ["dag_id"],
            registry=registry,
        ),
        dag_last_failure=Gauge(
            "trademaster_dag_last_failure_timestamp_seconds",
            "When a run of the DAG last failed",
            ["dag_id"],
            registry=registry,
        ),
        dag_run_duration=Gauge(
            "trademaster_dag_run_duration_seconds",
            "How long the DAG's last finished run took",
            ["dag_id", "state"],
            registry=registry,
        ),
    )
