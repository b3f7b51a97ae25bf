"""Labelled windows for price-prediction-lstm: each window with the next bar's log return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trademaster.features.price_window import bar_features, complete_windows, symbol_bars


@dataclass(frozen=True)
class LabelledWindows:
    """Windows of one symbol in time order, each labelled with the return that followed it."""

    symbol: str
    interval: str
    windows: np.ndarray  # [n, W, F] float32
    targets: np.ndarray  # [n] float32: log return of the bar after the window
    last_bar_ts: np.ndarray  # [n] datetime64: newest bar inside the window
    target_ts: np.ndarray  # [n] datetime64: the bar whose return is the target

    def __len__(self) -> int:
        return len(self.targets)

    def part(self, rows: slice) -> LabelledWindows:
        return LabelledWindows(
            self.symbol,
            self.interval,
            self.windows[rows],
            self.targets[rows],
            self.last_bar_ts[rows],
            self.target_ts[rows],
        )

    @property
    def persistence(self) -> np.ndarray:
        """The last return inside each window (the persistence baseline's forecast)."""
        return self.windows[:, -1, 0]


def labelled_windows(
    symbol: str, interval: str, rows: pd.DataFrame, window: int
) -> LabelledWindows:
    """Every complete window of one symbol's sorted bars that has a following bar."""
    features = bar_features(rows)
    windows, last_bar = complete_windows(features, window)
    has_next = last_bar + 1 < len(rows)
    windows, last_bar = windows[has_next], last_bar[has_next]
    ts = rows["ts"].to_numpy()
    return LabelledWindows(
        symbol=symbol,
        interval=interval,
        windows=windows,
        targets=features[last_bar + 1, 0].astype(np.float32),
        last_bar_ts=ts[last_bar],
        target_ts=ts[last_bar + 1],
    )


def labelled_series(market: pd.DataFrame, window: int) -> dict[str, LabelledWindows]:
    """Labelled windows of every symbol in a ``market_data`` frame, by symbol."""
    return {
        symbol: labelled_windows(symbol, interval, rows, window)
        for symbol, interval, rows in symbol_bars(market)
    }


def stack(parts: Sequence[LabelledWindows]) -> tuple[np.ndarray, np.ndarray]:
    """(windows, targets) of several parts, concatenated."""
    if not parts:
        raise ValueError("nothing to stack")
    return (
        np.concatenate([p.windows for p in parts]),
        np.concatenate([p.targets for p in parts]),
    )


def split_tail(
    series: Sequence[LabelledWindows], fraction: float
) -> tuple[list[LabelledWindows], list[LabelledWindows]]:
    """(head, tail) of every series: the last ``fraction`` of each one's windows is the tail."""
    heads, tails = [], []
    for part in series:
        n_tail = max(1, round(len(part) * fraction)) if len(part) > 1 else 0
        heads.append(part.part(slice(0, len(part) - n_tail)))
        if n_tail:
            tails.append(part.part(slice(len(part) - n_tail, len(part))))
    return heads, tails
