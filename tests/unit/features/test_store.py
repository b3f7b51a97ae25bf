from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import yaml

from trademaster.features.market_features import MARKET_FEATURES
from trademaster.features.store import (
    feature_service_columns,
    load_definitions,
    registry_path,
    repo_config_dict,
)
from trademaster.features.user_features import USER_FEATURES

FEATURE_STORE_YAML = Path(__file__).resolve().parents[3] / "feature_repo" / "feature_store.yaml"


@pytest.fixture(scope="module")
def definitions() -> ModuleType:
    return load_definitions()


def test_repo_config_keeps_the_yaml_and_sets_registry_and_redis(tmp_path: Path) -> None:
    shipped = yaml.safe_load(FEATURE_STORE_YAML.read_text())

    config = repo_config_dict(tmp_path, "127.0.0.1:1234")

    for key in ("project", "provider", "offline_store", "entity_key_serialization_version"):
        assert config[key] == shipped[key], key
    assert config["project"] == "trademaster"
    assert config["registry"] == str(tmp_path / "data" / "registry.db")
    assert registry_path(tmp_path) == tmp_path / "data" / "registry.db"
    assert config["online_store"] == {"type": "redis", "connection_string": "127.0.0.1:1234"}
    # The shipped file is left alone.
    assert yaml.safe_load(FEATURE_STORE_YAML.read_text()) == shipped


def test_repo_config_is_a_valid_feast_config(tmp_path: Path) -> None:
    from feast.repo_config import RepoConfig

    config = RepoConfig(repo_path=tmp_path, **repo_config_dict(tmp_path, "127.0.0.1:1234"))

    assert config.project == "trademaster"
    assert config.online_store.connection_string == "127.0.0.1:1234"


def test_risk_service_columns_are_user_then_market_features_in_order(
    definitions: ModuleType,
) -> None:
    columns = feature_service_columns(definitions.risk_model_v1)

    user_view = [feature.name for feature in definitions.user_behavior_fv.features]
    market_view = [feature.name for feature in definitions.market_features_fv.features]
    assert len(columns) == 15
    assert len(set(columns)) == 15
    assert columns[:8] == user_view[:8]
    # risk_model_v1 is frozen: features added to the view later (sentiment_score) are not in it.
    assert columns[8:] == [name for name in market_view if name != "sentiment_score"]
    assert columns[0] == "avg_trade_size"


def test_feature_views_match_the_computed_features(definitions: ModuleType) -> None:
    user_view = [feature.name for feature in definitions.user_behavior_fv.features]
    market_view = [feature.name for feature in definitions.market_features_fv.features]

    assert user_view == list(USER_FEATURES)
    assert market_view == [*MARKET_FEATURES, "sentiment_score"]
