from __future__ import annotations

import numpy as np
import pandas as pd

from tests.unit.warehouse.helpers import positions_of
from trademaster.warehouse.seed import WarehouseFrames
from trademaster.warehouse.users import (
    ARCHETYPES,
    DEFAULT_MIX,
    archetype_at,
    generate_users,
)

TRADE_DAYS = pd.bdate_range("2026-01-05", periods=252)
NAMES = {archetype.name for archetype in ARCHETYPES}


def _first_archetype(users: pd.DataFrame) -> pd.Series:
    return users["previous_archetype"].where(
        users["previous_archetype"].notna(), users["archetype"]
    )


def test_users_have_ids_archetypes_capital_and_a_signup_date() -> None:
    users = generate_users(500, TRADE_DAYS, np.random.default_rng(1))

    assert list(users["user_id"]) == list(range(1, 501))
    assert set(users["archetype"]) == NAMES
    assert (users["capital_usd"] > 0).all()
    assert (users["signup_date"] >= TRADE_DAYS[0] - pd.Timedelta(days=3 * 365)).all()
    assert (users["signup_date"] <= TRADE_DAYS[-1]).all()
    assert (users["signup_date"] == users["signup_date"].dt.normalize()).all()


def test_archetype_shares_and_investor_capital() -> None:
    users = generate_users(20_000, TRADE_DAYS, np.random.default_rng(2))

    observed = _first_archetype(users).value_counts(normalize=True)
    total = sum(archetype.share for archetype in ARCHETYPES)
    for archetype in ARCHETYPES:
        assert abs(observed[archetype.name] - archetype.share / total) < 0.02, archetype.name
    # Long-term investors start with twice the capital of an otherwise identical user.
    median = users.groupby(_first_archetype(users))["capital_usd"].median()
    ratio = median["long_term_investor"] / median.drop("long_term_investor").median()
    assert 1.6 < ratio < 2.5


def test_users_mix_styles_drift_and_sign_up_late_in_the_configured_shares() -> None:
    users = generate_users(20_000, TRADE_DAYS, np.random.default_rng(3))

    mixed = users["secondary_archetype"].notna()
    assert abs(mixed.mean() - DEFAULT_MIX.mixed_share) < 0.02
    assert (users.loc[mixed, "secondary_archetype"] != users.loc[mixed, "archetype"]).all()
    low, high = DEFAULT_MIX.secondary_share
    assert users.loc[mixed, "secondary_share"].between(low, high).all()
    assert (users.loc[~mixed, "secondary_share"] == 0).all()

    drifted = users["previous_archetype"].notna()
    # Late sign-ups too close to a drift day do not drift, so a little under the share.
    assert DEFAULT_MIX.drift_share - 0.06 < drifted.mean() <= DEFAULT_MIX.drift_share + 0.01
    assert (users.loc[drifted, "previous_archetype"] != users.loc[drifted, "archetype"]).all()
    assert users.loc[drifted, "archetype_since"].between(TRADE_DAYS[0], TRADE_DAYS[-1]).all()
    assert users.loc[~drifted, "archetype_since"].isna().all()
    assert (users.loc[drifted, "archetype_since"] > users.loc[drifted, "signup_date"]).all()

    late = users["signup_date"] >= TRADE_DAYS[0]
    assert abs(late.mean() - DEFAULT_MIX.late_signup_share) < 0.02


def test_the_label_is_the_archetype_in_effect_at_the_snapshot() -> None:
    users = pd.DataFrame(
        {
            "user_id": [1, 2],
            "archetype": ["day_trader", "swing_trader"],
            "previous_archetype": ["panic_seller", None],
            "archetype_since": pd.to_datetime(["2026-03-02", None]),
        }
    )
    times = pd.Series(pd.to_datetime(["2026-03-01", "2026-03-02", "2026-01-01"], utc=True))

    labels = archetype_at(users, np.array([1, 1, 2]), times)

    assert labels.tolist() == ["panic_seller", "day_trader", "swing_trader"]


def test_nobody_trades_before_signing_up_and_drifters_change_style(
    default_frames: WarehouseFrames,
) -> None:
    positions = positions_of(default_frames).reset_index()
    users = default_frames.users.set_index("user_id")
    signup = positions["user_id"].map(users["signup_date"])
    assert (positions["ts"] >= signup).all()

    drifted = users[users["previous_archetype"].notna() & users["secondary_archetype"].isna()]
    own = positions[positions["user_id"].isin(drifted.index)]
    since = own["user_id"].map(drifted["archetype_since"])
    before = own["ts"] < since
    assert (
        own.loc[before, "archetype"]
        == own.loc[before, "user_id"].map(drifted["previous_archetype"])
    ).all()
    assert (
        own.loc[~before, "archetype"] == own.loc[~before, "user_id"].map(drifted["archetype"])
    ).all()


def test_mixed_users_trade_about_their_share_in_the_secondary_style(
    default_frames: WarehouseFrames,
) -> None:
    positions = positions_of(default_frames)
    users = default_frames.users.set_index("user_id")
    mixed = users[users["secondary_archetype"].notna() & users["previous_archetype"].isna()]
    own = positions[positions["user_id"].isin(mixed.index)]
    secondary = own["archetype"] == own["user_id"].map(mixed["secondary_archetype"])
    observed = secondary.groupby(own["user_id"]).mean()
    expected = mixed["secondary_share"].reindex(observed.index)
    # Over all mixed users the shares agree closely; each user's is a small binomial sample.
    assert abs(observed.mean() - expected.mean()) < 0.02
    assert np.corrcoef(observed, expected)[0, 1] > 0.4
