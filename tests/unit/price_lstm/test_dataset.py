from __future__ import annotations

import numpy as np
import pandas as pd

from tests.unit.features.test_price_window import random_bars
from trademaster.features.price_window import WARMUP_BARS, bar_features
from trademaster.price_lstm.dataset import labelled_series, split_tail, stack

WINDOW = 10


def test_each_window_is_labelled_with_the_next_bars_log_return() -> None:
    bars = random_bars(60)

    windows = labelled_series(bars, WINDOW)["SYN001"]

    close = bars["close"].to_numpy()
    first_last_bar = WARMUP_BARS + WINDOW - 1
    assert len(windows) == len(bars) - first_last_bar - 1  # the newest window has no label
    np.testing.assert_allclose(windows.targets, np.diff(np.log(close))[first_last_bar:], rtol=1e-5)
    assert (windows.target_ts > windows.last_bar_ts).all()
    np.testing.assert_allclose(
        windows.windows[0], bar_features(bars)[WARMUP_BARS : first_last_bar + 1], rtol=1e-6
    )


def test_persistence_is_the_last_return_inside_the_window() -> None:
    windows = labelled_series(random_bars(60), WINDOW)["SYN001"]

    np.testing.assert_array_equal(windows.persistence[1:], windows.targets[:-1])


def test_split_tail_keeps_the_newest_windows_of_every_series_apart() -> None:
    bars = pd.concat([random_bars(80, "SYN001"), random_bars(60, "SYN002", seed=1)])
    series = labelled_series(bars, WINDOW)

    heads, tails = split_tail(list(series.values()), 0.25)

    for head, tail, whole in zip(heads, tails, series.values(), strict=True):
        assert len(head) + len(tail) == len(whole)
        assert len(tail) == round(len(whole) * 0.25)
        assert head.target_ts.max() < tail.target_ts.min()
    windows, targets = stack(heads)
    assert windows.shape == (sum(len(h) for h in heads), WINDOW, 5)
    assert targets.dtype == np.float32
