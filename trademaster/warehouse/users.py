"""Generated users, each with one behaviour archetype that drives how they trade."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


def generate_users(
    n_users: int, first_trade_day: datetime, rng: np.random.Generator
) -> pd.DataFrame:
    """Users with an archetype, starting capital and a sign-up date before trading starts."""
    shares = np.array([archetype.share for archetype in ARCHETYPES])
    archetype_index = rng.choice(len(ARCHETYPES), size=n_users, p=shares / shares.sum())
    names = np.array([archetype.name for archetype in ARCHETYPES])[archetype_index]
    capital = np.exp(rng.normal(np.log(25_000), 0.9, size=n_users))
    capital[names == "long_term_investor"] *= 2.0
    signup_offset_days = rng.integers(1, 3 * 365, size=n_users)
    signup = pd.Timestamp(first_trade_day) - pd.to_timedelta(signup_offset_days, unit="D")
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1),
            "archetype": names,
            "capital_usd": np.round(capital, 2),
            "signup_date": signup.normalize(),
        }
    )
