"""Generated users: behaviour archetypes that drive how they trade, mixed and drifting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

EntryRule = Literal["random", "momentum"]


@dataclass(frozen=True)
class Archetype:
    name: str
    share: float  # fraction of users
    activity: float  # relative number of positions per user
    holding_days: tuple[int, int]  # business days, inclusive range
    leverage: tuple[float, float]
    watchlist_size: tuple[int, int]
    short_probability: float
    position_fraction: tuple[float, float]  # of capital put into one position
    entry_rule: EntryRule = "random"
    stop_loss: float | None = None  # sells once the position is down this much


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("day_trader", 0.18, 8.0, (0, 0), (2.0, 4.0), (2, 5), 0.40, (0.10, 0.30)),
    Archetype("swing_trader", 0.24, 2.5, (3, 15), (1.0, 2.0), (5, 12), 0.25, (0.05, 0.15)),
    Archetype("long_term_investor", 0.26, 0.6, (60, 200), (1.0, 1.0), (10, 25), 0.0, (0.03, 0.08)),
    Archetype(
        "momentum_chaser", 0.17, 2.0, (5, 20), (1.5, 3.0), (3, 6), 0.05, (0.10, 0.25), "momentum"
    ),
    Archetype(
        "panic_seller", 0.15, 1.5, (10, 60), (1.0, 1.5), (3, 8), 0.0, (0.10, 0.30), stop_loss=0.04
    ),
)

ARCHETYPE_BY_NAME = {archetype.name: archetype for archetype in ARCHETYPES}


@dataclass(frozen=True)
class BehaviourMix:
    """How far users stray from one clean archetype (real users are not textbook cases).

    - mixed users put a share of their positions into a second style (a swing trader who
      also day-trades now and then);
    - drifting users change archetype once during the trading window (an investor turned
      momentum chaser); their label is the archetype in effect at the snapshot, while their
      trailing window still holds some of the old behaviour;
    - late sign-ups join during the window, so their first snapshots rest on few trades.
    """

    mixed_share: float = 0.55
    secondary_share: tuple[float, float] = (0.10, 0.40)
    drift_share: float = 0.20
    # Drifts happen in this part of the trade window (fractions of its length).
    drift_window: tuple[float, float] = (0.25, 0.85)
    late_signup_share: float = 0.30
    # Late sign-ups join in this part of the trade window.
    late_signup_window: tuple[float, float] = (0.05, 0.80)


DEFAULT_MIX = BehaviourMix()


def generate_users(
    n_users: int,
    trade_days: pd.DatetimeIndex,
    rng: np.random.Generator,
    mix: BehaviourMix = DEFAULT_MIX,
) -> pd.DataFrame:
    """Users with an archetype (the one in effect at the end of ``trade_days``), the one
    before it and the day it took over for drifting users, an optional secondary style with
    the share of positions it takes, starting capital and a sign-up date."""
    names = np.array([archetype.name for archetype in ARCHETYPES])
    shares = np.array([archetype.share for archetype in ARCHETYPES])
    first = rng.choice(len(ARCHETYPES), size=n_users, p=shares / shares.sum())
    capital = np.exp(rng.normal(np.log(25_000), 0.9, size=n_users))
    capital[names[first] == "long_term_investor"] *= 2.0

    n_days = len(trade_days)
    signup_offset_days = rng.integers(1, 3 * 365, size=n_users)
    signup = (trade_days[0] - pd.to_timedelta(signup_offset_days, unit="D")).normalize()
    late = rng.random(n_users) < mix.late_signup_share
    late_day = rng.integers(*_day_range(n_days, mix.late_signup_window), size=n_users)
    signup = signup.where(~late, trade_days[late_day])

    drifts = rng.random(n_users) < mix.drift_share
    drift_day = rng.integers(*_day_range(n_days, mix.drift_window), size=n_users)
    # A drift needs time left after sign-up; a late sign-up drifts at least 40 days later.
    signup_day = np.where(late, late_day, 0)
    drifts &= drift_day > signup_day + 40
    current = np.where(drifts, _another(first, rng), first)

    mixed = rng.random(n_users) < mix.mixed_share
    secondary = np.where(mixed, _another(current, rng), -1)
    secondary_share = np.where(mixed, rng.uniform(*mix.secondary_share, size=n_users), 0.0)
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1),
            "archetype": names[current],
            "previous_archetype": _or_none(drifts, names[first]),
            "archetype_since": pd.Series(trade_days[drift_day]).where(drifts),
            "secondary_archetype": _or_none(mixed, names[np.maximum(secondary, 0)]),
            "secondary_share": np.round(secondary_share, 3),
            "capital_usd": np.round(capital, 2),
            "signup_date": signup,
        }
    )


def _or_none(keep: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = values.astype(object)
    out[~keep] = None
    return out


def _day_range(n_days: int, window: tuple[float, float]) -> tuple[int, int]:
    low = int(n_days * window[0])
    return low, max(low + 1, int(n_days * window[1]))


def _another(index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each archetype index, a different archetype chosen uniformly."""
    step = rng.integers(1, len(ARCHETYPES), size=len(index))
    return (index + step) % len(ARCHETYPES)


def archetype_at(users: pd.DataFrame, user_ids: np.ndarray, times: pd.Series) -> np.ndarray:
    """The archetype of each user at each time: the label of a behaviour snapshot."""
    table = users.set_index("user_id")
    current = table["archetype"].reindex(user_ids).to_numpy(dtype=object)
    previous = table["previous_archetype"].reindex(user_ids).to_numpy(dtype=object)
    since = pd.to_datetime(table["archetype_since"].reindex(user_ids)).to_numpy()
    naive = pd.to_datetime(times)
    if naive.dt.tz is not None:
        naive = naive.dt.tz_convert("UTC").dt.tz_localize(None)
    before = ~pd.isna(since) & (naive.to_numpy() < since)
    return np.where(before, previous, current)
