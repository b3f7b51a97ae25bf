"""Labels defined only from what happens after a trade (no leakage into features)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def adverse_move_labels(
    opens: pd.DataFrame, daily: pd.DataFrame, horizon: int, loss_threshold: float
) -> pd.DataFrame:
    """Label each opening trade 1 if, within ``horizon`` bars after its session, the levered
    position was at some point down ``loss_threshold`` or more of its margin.

    The worst price is the low (long) or high (short) of each later bar. Trades whose horizon
    runs past the last bar are dropped: their outcome is not known yet.
    """
    out = []
    for symbol, trades in opens.groupby("symbol"):
        bars = daily[daily["symbol"] == symbol].sort_values("ts")
        if bars.empty:
            continue
        days = bars["ts"].to_numpy()
        entry_index = np.searchsorted(days, trades["ts"].dt.normalize().to_numpy())
        known = entry_index + horizon < len(days)
        trades, entry_index = trades[known], entry_index[known]
        if trades.empty:
            continue
        offsets = entry_index[:, None] + np.arange(1, horizon + 1)[None, :]
        worst_low = bars["low"].to_numpy()[offsets].min(axis=1)
        worst_high = bars["high"].to_numpy()[offsets].max(axis=1)
        price = trades["price"].to_numpy()
        long = (trades["direction"] == "long").to_numpy()
        adverse = np.where(long, worst_low / price - 1, 1 - worst_high / price)
        levered = adverse * trades["leverage"].to_numpy()
        out.append(
            trades.assign(adverse_move=levered, label=(levered <= -loss_threshold).astype("int64"))
        )
    if not out:
        return opens.iloc[0:0].assign(
            adverse_move=pd.Series(dtype=float), label=pd.Series(dtype="int64")
        )
    return pd.concat(out, ignore_index=True)
