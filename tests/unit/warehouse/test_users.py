from __future__ import annotations

import numpy as np
import pandas as pd

from trademaster.warehouse.users import ARCHETYPES, generate_users

FIRST_TRADE_DAY = pd.Timestamp("2026-01-05")


def test_users_have_ids_archetypes_capital_and_an_earlier_signup() -> None:
    users = generate_users(500, FIRST_TRADE_DAY, np.random.default_rng(1))

    assert list(users["user_id"]) == list(range(1, 501))
    assert set(users["archetype"]) == {archetype.name for archetype in ARCHETYPES}
    assert (users["capital_usd"] > 0).all()
    assert (users["signup_date"] < FIRST_TRADE_DAY).all()
    assert (users["signup_date"] >= FIRST_TRADE_DAY - pd.Timedelta(days=3 * 365)).all()
    assert (users["signup_date"] == users["signup_date"].dt.normalize()).all()


def test_archetype_shares_and_investor_capital() -> None:
    users = generate_users(20_000, FIRST_TRADE_DAY, np.random.default_rng(2))

    observed = users["archetype"].value_counts(normalize=True)
    total = sum(archetype.share for archetype in ARCHETYPES)
    for archetype in ARCHETYPES:
        assert abs(observed[archetype.name] - archetype.share / total) < 0.02, archetype.name
    # Long-term investors start with twice the capital of an otherwise identical user.
    median = users.groupby("archetype")["capital_usd"].median()
    ratio = median["long_term_investor"] / median.drop("long_term_investor").median()
    assert 1.6 < ratio < 2.5
