"""Per-symbol daily market features.

A row describes a symbol after the close of ``bar_date``; its ``event_timestamp`` is midnight
UTC after that close, when the row becomes available, so point-in-time joins never see a
bar's own session.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Name -> description of the features computed from daily bars (the Feast view's schema is
# built from this, in this order, followed by SENTIMENT_SCORE).
MARKET_FEATURES: dict[str, str] = {
    "price_volatility": "20-day annualised vol",
    "volume_ma_20": "20-day mean volume",
    "rsi_14": "14-day RSI (Wilder)",
    "return_5d": "5-day return",
    "return_20d": "20-day return",
    "close_to_ma50": "Close / 50-day moving average - 1",
    "atr_pct_14": "14-day ATR / close",
}
# Added by the feature build from the sentiment-analyzer champion's scores.
SENTIMENT_SCORE = "sentiment_score"
SENTIMENT_DESCRIPTION = "Mean sentiment-analyzer score of the session's (generated) headlines"
WARMUP_BARS = 50


def compute_market_features(daily: pd.DataFrame) -> pd.DataFrame:
    """Features for each (symbol, daily bar) after a warm-up of ``WARMUP_BARS`` bars."""
    frames = [
        _symbol_features(rows.sort_values("ts")) for _, rows in daily.groupby("symbol", sort=True)
    ]
    features = pd.concat(frames, ignore_index=True)
    features["event_timestamp"] = (features["bar_date"] + pd.Timedelta(days=1)).dt.tz_localize(
        "UTC"
    )
    return features


def _symbol_features(rows: pd.DataFrame) -> pd.DataFrame:
    close = rows["close"].astype(float)
    log_return = np.log(close).diff()
    previous_close = close.shift(1)
    true_range = pd.concat(
        [
            rows["high"] - rows["low"],
            (rows["high"] - previous_close).abs(),
            (rows["low"] - previous_close).abs(),
        ],
        axis=1,
    ).max(axis=1)
    out = pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "bar_date": rows["ts"].to_numpy(),
            "price_volatility": log_return.rolling(20).std() * np.sqrt(252),
            "volume_ma_20": rows["volume"].rolling(20).mean(),
            "rsi_14": relative_strength_index(close, 14),
            "return_5d": close / close.shift(5) - 1,
            "return_20d": close / close.shift(20) - 1,
            "close_to_ma50": close / close.rolling(50).mean() - 1,
            # The simple 14-bar mean of the true range, not Wilder's smoothed ATR; every
            # feature is checked against its formula in tests/unit/features/test_market_oracle.py.
            "atr_pct_14": true_range.rolling(14).mean() / close,
        }
    )
    out = out.iloc[WARMUP_BARS:]
    return out.dropna().astype({name: "float32" for name in MARKET_FEATURES})


def relative_strength_index(close: pd.Series, window: int) -> pd.Series:
    """Wilder's RSI in [0, 100]; 100 when there were no losses in the window."""
    change = close.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    loss = (-change).clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    strength = gain / loss.replace(0.0, np.nan)
    rsi = 100 - 100 / (1 + strength)
    return rsi.where(loss > 0, 100.0).where(gain.notna())
