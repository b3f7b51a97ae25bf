"""Feast definitions: entities, parquet sources, feature views and versioned feature services.

Offline parquet files are written by the pipeline to ``data/`` beside this file (paths are
relative to the repository root Feast is given). Feature timestamps mark when a row became
available: midnight UTC after the session it describes.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Float32

from trademaster.contract.models import ModelName
from trademaster.features.build import MARKET_FEATURES_FILE, PRICE_WINDOWS_FILE, USER_BEHAVIOR_FILE
from trademaster.features.market_features import (
    MARKET_FEATURES,
    SENTIMENT_DESCRIPTION,
    SENTIMENT_SCORE,
)
from trademaster.features.price_window import FEATURE_NAMES as BAR_FEATURES
from trademaster.features.price_window import WINDOW, WINDOW_COLUMN
from trademaster.features.user_features import USER_FEATURES

# The names and descriptions of the features are those of the code that computes them.


def _float_fields(described: dict[str, str]) -> list[Field]:
    return [Field(name=name, dtype=Float32, description=text) for name, text in described.items()]


user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A TradeMaster customer (generated users).",
)
symbol = Entity(
    name="symbol",
    join_keys=["symbol"],
    value_type=ValueType.STRING,
    description="A tradable instrument: real histories (GOOG, EURUSD) or generated SYN###.",
)

user_behavior_source = FileSource(
    name="user_behavior_source",
    path=f"data/{USER_BEHAVIOR_FILE}",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
market_features_source = FileSource(
    name="market_features_source",
    path=f"data/{MARKET_FEATURES_FILE}",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

price_window_source = FileSource(
    name="price_window_source",
    path=f"data/{PRICE_WINDOWS_FILE}",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

user_behavior_fv = FeatureView(
    name="user_behavior_fv",
    entities=[user],
    ttl=timedelta(days=7),
    schema=_float_fields(USER_FEATURES),
    source=user_behavior_source,
    online=True,
    tags={"team": "ml-platform"},
)

market_features_fv = FeatureView(
    name="market_features_fv",
    entities=[symbol],
    ttl=timedelta(days=5),
    schema=[
        *_float_fields(MARKET_FEATURES),
        Field(name=SENTIMENT_SCORE, dtype=Float32, description=SENTIMENT_DESCRIPTION),
    ],
    source=market_features_source,
    online=True,
    tags={"team": "ml-platform"},
)

# Frozen with the first risk model: the user features but the two added later (momentum at
# entry, activity count), and the market features computed from bars (not sentiment).
RISK_V1_USER_FEATURES = [
    name for name in USER_FEATURES if name not in ("entry_momentum", "trades_in_window")
]
risk_model_v1 = FeatureService(
    name="risk_model_v1",
    features=[
        user_behavior_fv[RISK_V1_USER_FEATURES],
        market_features_fv[list(MARKET_FEATURES)],
    ],
    description="Inputs of risk-assessment-model, in model order.",
    tags={"model": ModelName.RISK.value},
)

behavior_model_v1 = FeatureService(
    name="behavior_model_v1",
    features=[user_behavior_fv],
    description="Inputs of behavioral-pattern-classifier, in model order.",
    tags={"model": ModelName.BEHAVIOR.value},
)

price_window_fv = FeatureView(
    name="price_window_fv",
    entities=[symbol],
    ttl=timedelta(days=5),
    schema=[
        Field(
            name=WINDOW_COLUMN,
            dtype=Array(Float32),
            description=f"Last {WINDOW} bars x {len(BAR_FEATURES)} scale-free OHLCV features "
            f"({', '.join(BAR_FEATURES)}), oldest first, flattened",
        ),
    ],
    source=price_window_source,
    online=True,
    tags={"team": "ml-platform"},
)

price_model_v1 = FeatureService(
    name="price_model_v1",
    features=[price_window_fv[[WINDOW_COLUMN]]],
    description="Input window of price-prediction-lstm.",
    tags={"model": ModelName.PRICE.value},
)
