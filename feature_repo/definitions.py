"""Feast definitions: entities, parquet sources, feature views and versioned feature services.

Offline parquet files are written by the pipeline to ``data/`` beside this file (paths are
relative to the repository root Feast is given). Feature timestamps mark when a row became
available: midnight UTC after the session it describes.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Float32

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
    path="data/user_behavior.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
market_features_source = FileSource(
    name="market_features_source",
    path="data/market_features.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

price_window_source = FileSource(
    name="price_window_source",
    path="data/price_windows.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

user_behavior_fv = FeatureView(
    name="user_behavior_fv",
    entities=[user],
    ttl=timedelta(days=7),
    schema=[
        Field(name="avg_trade_size", dtype=Float32, description="Mean notional, USD, 90 days"),
        Field(name="trade_frequency", dtype=Float32, description="Positions opened per day"),
        Field(name="avg_holding_days", dtype=Float32, description="Mean days held, closed"),
        Field(name="avg_leverage", dtype=Float32),
        Field(name="risk_score", dtype=Float32, description="Levered exposure x concentration"),
        Field(name="portfolio_diversity", dtype=Float32, description="1 - HHI of notional"),
        Field(name="win_rate", dtype=Float32, description="Share of closed positions in profit"),
        Field(name="short_ratio", dtype=Float32),
        Field(name="entry_momentum", dtype=Float32, description="Mean 20-day return at entry"),
        Field(name="trades_in_window", dtype=Float32),
    ],
    source=user_behavior_source,
    online=True,
    tags={"team": "ml-platform"},
)

market_features_fv = FeatureView(
    name="market_features_fv",
    entities=[symbol],
    ttl=timedelta(days=5),
    schema=[
        Field(name="price_volatility", dtype=Float32, description="20-day annualised vol"),
        Field(name="volume_ma_20", dtype=Float32),
        Field(name="rsi_14", dtype=Float32),
        Field(name="return_5d", dtype=Float32),
        Field(name="return_20d", dtype=Float32),
        Field(name="close_to_ma50", dtype=Float32),
        Field(name="atr_pct_14", dtype=Float32, description="14-day ATR / close"),
        Field(
            name="sentiment_score",
            dtype=Float32,
            description="Mean sentiment-analyzer score of the session's (generated) headlines",
        ),
    ],
    source=market_features_source,
    online=True,
    tags={"team": "ml-platform"},
)

risk_model_v1 = FeatureService(
    name="risk_model_v1",
    features=[
        user_behavior_fv[
            [
                "avg_trade_size",
                "trade_frequency",
                "avg_holding_days",
                "avg_leverage",
                "risk_score",
                "portfolio_diversity",
                "win_rate",
                "short_ratio",
            ]
        ],
        market_features_fv[
            [
                "price_volatility",
                "volume_ma_20",
                "rsi_14",
                "return_5d",
                "return_20d",
                "close_to_ma50",
                "atr_pct_14",
            ]
        ],
    ],
    description="Inputs of risk-assessment-model, in model order.",
    tags={"model": "risk-assessment-model"},
)

behavior_model_v1 = FeatureService(
    name="behavior_model_v1",
    features=[user_behavior_fv],
    description="Inputs of behavioral-pattern-classifier, in model order.",
    tags={"model": "behavioral-pattern-classifier"},
)

price_window_fv = FeatureView(
    name="price_window_fv",
    entities=[symbol],
    ttl=timedelta(days=5),
    schema=[
        Field(
            name="price_window",
            dtype=Array(Float32),
            description="Last 30 bars x 5 scale-free OHLCV features, oldest first, flattened",
        ),
    ],
    source=price_window_source,
    online=True,
    tags={"team": "ml-platform"},
)

price_model_v1 = FeatureService(
    name="price_model_v1",
    features=[price_window_fv[["price_window"]]],
    description="Input window of price-prediction-lstm.",
    tags={"model": "price-prediction-lstm"},
)
