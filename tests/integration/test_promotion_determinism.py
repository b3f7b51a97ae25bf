"""Same inputs, same decision: the behaviour classifier's promotion at default sizes, for
three end dates, on the real path (warehouse, offline features, Feast point-in-time joins,
training, MLflow). Each decision must be the one its intervals support, and the classifier
must beat logistic regression with the lower bound of the paired interval above zero."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.fingerprints import forget_fingerprint
from tests.integration.stack import pipeline_test_settings
from trademaster.behavior import pipeline as behavior_pipeline
from trademaster.features.build import build_offline_features, feast_objects
from trademaster.features.store import open_feature_store
from trademaster.launchers.redis_server import RedisServer
from trademaster.settings import PipelineSettings
from trademaster.training import gates
from trademaster.warehouse.seed import seed_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.pipeline]

# A Monday, a mid-week day and a month end: different calendars, different generated data.
END_DATES = (date(2026, 11, 30), date(2026, 6, 17), date(2027, 3, 31))


@pytest.mark.parametrize("end_date", END_DATES, ids=str)
def test_the_behaviour_decision_is_the_one_its_intervals_support(
    end_date: date, tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = pipeline_test_settings(
        tmp_path,
        redis_server.port,
        seed=PipelineSettings.model_fields["seed"].default,
        end_date=end_date,
    )
    seed_warehouse(settings)
    build_offline_features(settings, daily_sentiment=None)
    store_root = settings.feature_store_root.resolve()
    open_feature_store(store_root, settings.online_store_redis).apply(feast_objects(store_root))

    candidate = behavior_pipeline.train_and_register(settings)
    metrics = candidate["metrics"]
    promoted, reason = behavior_pipeline.decide(metrics, settings)
    _, _, results = gates.evaluate(behavior_pipeline.GATE_RULES, metrics)

    print(f"{end_date}: promoted={promoted}: {reason}")
    assert promoted == all(result.passed for result in results)
    by_name = {result.rule.name: result.interval for result in results}
    for name, interval in by_name.items():
        assert interval.low <= interval.estimate <= interval.high, name
    # Room for a model: realistic, clearly below separable, and beating logistic regression.
    assert 0.70 < metrics["holdout_macro_f1"] < 0.95
    assert by_name["vs_logistic_macro_f1"].low > 0, reason
    assert promoted, reason

    # Same inputs, same numbers: retraining on the same data reproduces every interval.
    forget_fingerprint(settings, behavior_pipeline.MODEL_NAME, candidate["version"])
    again = behavior_pipeline.train_and_register(settings)["metrics"]
    for key in gates.GateRule("vs_logistic_macro_f1", "", "beats", 0).metric_keys():
        assert again[key] == metrics[key], key
