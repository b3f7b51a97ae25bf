"""Expanding-origin walk-forward folds over one series' time-ordered windows.

The tail of a series (from ``first_test_fraction``) is cut into ``n_folds`` consecutive test
blocks. Fold ``k`` trains on every window before its calibration slice, calibrates the interval
on the slice just before its test block, and is tested on its block, so each window is forecast
by a model that saw only earlier data (the training origin expands from fold to fold).
Window ``i``'s target is the return of the bar after window ``i``'s last bar, so with the slices
in this order every training target precedes every calibration target, which precedes every
test target; inputs of later windows overlap earlier targets, as they would in production.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WalkForwardConfig:
    n_folds: int = 3
    # Test blocks cover the series from this fraction of its windows to its end.
    first_test_fraction: float = 0.55
    # Each fold's calibration slice: this fraction of the series, right before its test block.
    calibration_fraction: float = 0.15

    def __post_init__(self) -> None:
        if self.n_folds < 1:
            raise ValueError(f"n_folds must be >= 1, got {self.n_folds}")
        if not 0 < self.calibration_fraction < self.first_test_fraction < 1:
            raise ValueError(
                "need 0 < calibration_fraction < first_test_fraction < 1, got "
                f"{self.calibration_fraction} and {self.first_test_fraction}"
            )


@dataclass(frozen=True)
class Fold:
    index: int
    train: slice
    calibration: slice
    test: slice


def walk_forward_folds(n_windows: int, config: WalkForwardConfig) -> list[Fold]:
    """The folds of a series of ``n_windows`` windows; every slice is non-empty."""
    first_test = round(n_windows * config.first_test_fraction)
    calibration = max(1, round(n_windows * config.calibration_fraction))
    remaining = n_windows - first_test
    if remaining < config.n_folds or first_test - calibration < 1:
        raise ValueError(
            f"{n_windows} windows are too few for {config.n_folds} folds with this config"
        )
    edges = [first_test + (remaining * k) // config.n_folds for k in range(config.n_folds + 1)]
    return [
        Fold(
            index=k,
            train=slice(0, edges[k] - calibration),
            calibration=slice(edges[k] - calibration, edges[k]),
            test=slice(edges[k], edges[k + 1]),
        )
        for k in range(config.n_folds)
    ]
