"""``trademaster market advance``: N more business days of demo data, appended to a seeded
warehouse, as if the trading app had kept running.

- **Bars** continue each generated symbol's process from where it stands: the factor model
  of the seed (market and sector factors, GARCH(1,1) idiosyncratic returns, Student-t
  shocks) with each symbol's beta, volatility and drift estimated from its own history, and
  its GARCH variance filtered up to the last bar, so a volatile stretch stays volatile.
  Real histories are history: they get no new bars.
- **Trades** by the same users, each still trading in the style in effect (the seed's
  simulator over the new days, with the history before them for momentum), opening
  positions at the warehouse's rate so far (each user at their own rate, so on a given day
  most open none) in the symbols and at the leverage they traded before; a share of users
  stops trading (churn) and new users sign up, with the seed's behaviour mix.
- **Headlines** for the new sessions, as in the seed.

A ``Regime`` plants a change for drift drills (``--volatility 2``: the new days' shocks twice
as large; ``--surge day_trader:800``: a campaign brings that many sign-ups of one behaviour
archetype, trading from their first day). The default regime is the market as it was.

Deterministic for (seed, the warehouse's last bar, regime): advancing twice by one day gives other
days than once by two only because the second call starts from another state. Only ever
appends rows; refuses a warehouse without generated symbols (not a demo warehouse).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.headlines import generate_headlines
from trademaster.warehouse.market import SECTORS
from trademaster.warehouse.read import redacted_url
from trademaster.warehouse.seed import insert_frame
from trademaster.warehouse.trades import Habit, PricePanel, simulate_trades, trading_habits
from trademaster.warehouse.users import ARCHETYPE_BY_NAME, generate_users

log = logging.getLogger(__name__)

# History kept under the new days: momentum lookbacks and exits need earlier closes.
PANEL_HISTORY_DAYS = 60
# Of the users active before, this share stops trading per 21 business days (churn); sign-ups
# arrive at the seed's rate.
MONTHLY_CHURN = 0.02
GARCH_ALPHA, GARCH_BETA = 0.10, 0.86
T_DOF = 5


@dataclass(frozen=True)
class Regime:
    """A planted change in the new days (the default: none)."""

    volatility: float = 1.0  # multiplies the new days' return shocks and intraday ranges
    surge_archetype: str | None = None  # sign-ups of this archetype, on top of the usual
    surge_signups: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.volatility <= 10:
            raise ValueError(f"volatility must be in (0, 10], got {self.volatility}")
        if self.surge_signups < 0:
            raise ValueError(f"surge_signups must be >= 0, got {self.surge_signups}")
        if self.surge_signups and self.surge_archetype not in ARCHETYPE_BY_NAME:
            raise ValueError(
                f"unknown archetype {self.surge_archetype!r}; one of: "
                + ", ".join(ARCHETYPE_BY_NAME)
            )

    @classmethod
    def parse_surge(cls, text: str, volatility: float = 1.0) -> Regime:
        """``ARCHETYPE:COUNT`` (the CLI's ``--surge``)."""
        name, _, count = text.partition(":")
        if not count.isdigit():
            raise ValueError(f"--surge takes ARCHETYPE:COUNT, e.g. day_trader:800; got {text!r}")
        return cls(volatility, name, int(count))


QUIET = Regime()


class NotADemoWarehouse(RuntimeError):
    """The warehouse has no generated symbols to continue."""


class DayNotOver(ValueError):
    """A day's data arrive after its session: advancing past yesterday (UTC) is refused."""


@dataclass(frozen=True)
class AdvanceSummary:
    url: str
    first_day: str
    last_day: str
    bars: int
    trades: int
    new_users: int
    churned_users: int
    headlines: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def advance_market(
    settings: PipelineSettings,
    days: int = 1,
    today: date | None = None,
    regime: Regime = QUIET,
) -> AdvanceSummary:
    """Appends ``days`` business days after the warehouse's last generated bar (none may be
    later than yesterday, UTC, or ``today`` - 1 day), in ``regime``."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    url = settings.resolved_warehouse_url
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            state = _read_state(connection)
        if state is None:
            raise NotADemoWarehouse(
                f"the warehouse at {redacted_url(url)} has no generated symbols to continue; "
                "`trademaster warehouse seed` fills an empty one"
            )
        last_day = state.bars["ts"].max()
        new_days = pd.bdate_range(last_day + pd.offsets.BDay(1), periods=days)
        latest = pd.Timestamp(today or datetime.now(UTC).date()) - pd.Timedelta(days=1)
        if new_days[-1] > latest:
            room = len(pd.bdate_range(last_day + pd.offsets.BDay(1), latest))
            raise DayNotOver(
                f"the warehouse ends on {last_day.date()}; {days} more business day(s) would "
                f"reach {new_days[-1].date()}, after yesterday ({latest.date()}): at most "
                f"{room} can be added now"
            )
        rng = np.random.default_rng([settings.seed, int(last_day.toordinal())])
        bars = continue_bars(state.bars, state.sectors, new_days, rng, regime.volatility)
        users, churned = _users_after(state, new_days, rng, regime)
        trades = _trades(state, users, bars, new_days, rng)
        headlines = _headlines(state, bars, new_days, rng)
        with engine.begin() as connection:
            for table, frame in (
                (schema.market_data, bars),
                (schema.users, users[users["user_id"] > state.max_user_id]),
                (schema.trades, trades),
                (schema.headlines, headlines),
            ):
                log.info("appending %s: %d rows", table.name, len(frame))
                insert_frame(connection, table, frame)
    finally:
        engine.dispose()
    return AdvanceSummary(
        url=redacted_url(url),
        first_day=str(new_days[0].date()),
        last_day=str(new_days[-1].date()),
        bars=len(bars),
        trades=len(trades),
        new_users=int((users["user_id"] > state.max_user_id).sum()),
        churned_users=churned,
        headlines=len(headlines),
    )


@dataclass(frozen=True)
class _State:
    bars: pd.DataFrame  # generated symbols' daily bars, all history
    sectors: dict[str, str]
    users: pd.DataFrame
    opens_per_day: float
    habits: dict[int, Habit]
    signups_per_day: float
    max_user_id: int
    max_trade_id: int
    max_position_id: int
    max_headline_id: int


def _read_state(connection: sa.Connection) -> _State | None:
    """What the new days continue from; None without generated bars and trades."""
    symbols = pd.read_sql(sa.select(schema.symbols), connection)
    generated = symbols.loc[symbols["source"] == "generated", "symbol"].tolist()
    market = schema.market_data
    bars = pd.read_sql(
        sa.select(market).where(market.c.symbol.in_(generated), market.c.interval == "1d"),
        connection,
    )
    bars["ts"] = pd.to_datetime(bars["ts"])
    if bars.empty:
        return None
    users = pd.read_sql(sa.select(schema.users), connection)
    users["signup_date"] = pd.to_datetime(users["signup_date"])
    users["archetype_since"] = pd.to_datetime(users["archetype_since"])
    trades = schema.trades
    first, last, n_trades, n_opens, max_trade, max_position = connection.execute(
        sa.select(
            sa.func.min(trades.c.ts),
            sa.func.max(trades.c.ts),
            sa.func.count(),
            sa.func.count().filter(trades.c.action == "open"),
            sa.func.max(trades.c.trade_id),
            sa.func.max(trades.c.position_id),
        )
    ).one()
    if not n_trades:
        return None
    opens = pd.read_sql(
        sa.select(trades.c.user_id, trades.c.symbol, trades.c.leverage).where(
            trades.c.action == "open"
        ),
        connection,
    )
    max_headline = connection.execute(sa.select(sa.func.max(schema.headlines.c.headline_id)))
    trade_days = max(1, len(pd.bdate_range(pd.Timestamp(first), pd.Timestamp(last))))
    signups = pd.to_datetime(users["signup_date"])
    in_window = signups >= pd.Timestamp(first).normalize()
    return _State(
        bars=bars.sort_values(["symbol", "ts"], ignore_index=True),
        sectors=dict(zip(symbols["symbol"], symbols["sector"], strict=True)),
        users=users,
        opens_per_day=int(n_opens) / trade_days,
        habits=trading_habits(opens),
        signups_per_day=float(in_window.sum()) / trade_days,
        max_user_id=int(users["user_id"].max()),
        max_trade_id=int(max_trade or 0),
        max_position_id=int(max_position or 0),
        max_headline_id=int(max_headline.scalar_one() or 0),
    )


def continue_bars(
    history: pd.DataFrame,
    sectors: dict[str, str],
    new_days: pd.DatetimeIndex,
    rng: np.random.Generator,
    volatility: float = 1.0,
) -> pd.DataFrame:
    """Bars of ``new_days`` for every symbol in ``history`` (long format, daily), continuing
    its factor-model process with parameters estimated from that history; ``volatility``
    scales the new days' shocks and ranges (1: as estimated)."""
    wide = history.pivot(index="ts", columns="symbol")
    names = list(wide["close"].columns)
    close = wide["close"].to_numpy(dtype=float)
    volume = wide["volume"].to_numpy(dtype=float)
    returns = np.diff(np.log(close), axis=0)
    market = returns.mean(axis=1)
    beta = (
        (returns - returns.mean(axis=0)).T
        @ (market - market.mean())
        / max(float(((market - market.mean()) ** 2).sum()), 1e-12)
    )
    residual = returns - market[:, None] * beta[None, :]
    sector_of = np.array([SECTORS.index(sectors[name]) for name in names])
    # Each symbol's loading on its sector: regressed on the mean of the sector's OTHER
    # symbols (with itself in the mean, a small sector would average its members' own
    # volatilities together). A sector of one has no factor.
    sector_factor = np.zeros((len(market), len(SECTORS)))
    loading = np.zeros(len(names))
    idio = residual.copy()
    for sector in np.unique(sector_of):
        members = np.flatnonzero(sector_of == sector)
        sector_factor[:, sector] = residual[:, members].mean(axis=1)
        if len(members) < 2:
            continue
        for member in members:
            others = residual[:, members[members != member]].mean(axis=1)
            centred = others - others.mean()
            loading[member] = (
                float(centred @ residual[:, member])
                / max(float(centred @ centred), 1e-12)
                * float(others.std() / max(sector_factor[:, sector].std(), 1e-12))
            )
            idio[:, member] = residual[:, member] - loading[member] * sector_factor[:, sector]
    drift = returns.mean(axis=0)
    daily_vol = idio.std(axis=0) + 1e-9
    variance = _garch_variance(idio, daily_vol)

    n_days, n_symbols = len(new_days), len(names)
    scale = np.sqrt((T_DOF - 2) / T_DOF)  # unit-variance Student-t
    scale *= volatility
    market_shock = rng.standard_t(T_DOF, size=n_days) * scale * market.std()
    sector_shock = rng.standard_t(T_DOF, size=(n_days, len(SECTORS))) * scale
    sector_shock *= sector_factor.std(axis=0)[None, :]
    shocks = rng.standard_t(T_DOF, size=(n_days, n_symbols)) * scale
    omega = daily_vol**2 * (1 - GARCH_ALPHA - GARCH_BETA)
    new_returns = np.empty((n_days, n_symbols))
    for day in range(n_days):
        idio_today = np.sqrt(variance) * shocks[day]
        variance = omega + GARCH_ALPHA * idio_today**2 + GARCH_BETA * variance
        new_returns[day] = (
            idio_today + market_shock[day] * beta + loading * sector_shock[day, sector_of] + drift
        )
    last_close = close[-1]
    new_close = last_close[None, :] * np.exp(np.cumsum(new_returns, axis=0))
    previous_close = np.vstack([last_close[None, :], new_close[:-1]])
    day_vol = np.abs(returns).mean(axis=0) * volatility
    open_ = previous_close * np.exp(rng.normal(0.0, 0.25, size=new_close.shape) * day_vol)
    high = np.maximum(open_, new_close) * np.exp(
        np.abs(rng.normal(0.0, 0.6, size=new_close.shape)) * day_vol
    )
    low = np.minimum(open_, new_close) * np.exp(
        -np.abs(rng.normal(0.0, 0.6, size=new_close.shape)) * day_vol
    )
    annual_vol = returns.std(axis=0) * np.sqrt(252) + 1e-9
    past_surprise = np.abs(returns) / (annual_vol / np.sqrt(252))
    base_volume = np.median(volume[1:] / np.exp(0.35 * past_surprise), axis=0)
    surprise = np.abs(new_returns) / (annual_vol / np.sqrt(252))
    new_volume = base_volume[None, :] * np.exp(
        0.35 * surprise + rng.normal(0.0, 0.3, size=new_close.shape)
    )
    return pd.DataFrame(
        {
            "symbol": np.repeat(np.array(names)[None, :], n_days, axis=0).ravel(),
            "interval": "1d",
            "ts": np.repeat(new_days.values, n_symbols),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": new_close.ravel(),
            "volume": np.round(new_volume.ravel()),
        }
    )


def _garch_variance(idio: np.ndarray, daily_vol: np.ndarray) -> np.ndarray:
    """The GARCH(1,1) conditional variance after the last observed day."""
    omega = daily_vol**2 * (1 - GARCH_ALPHA - GARCH_BETA)
    variance = daily_vol**2
    for day in range(len(idio)):
        variance = omega + GARCH_ALPHA * idio[day] ** 2 + GARCH_BETA * variance
    return np.asarray(variance)


def _users_after(
    state: _State, new_days: pd.DatetimeIndex, rng: np.random.Generator, regime: Regime = QUIET
) -> tuple[pd.DataFrame, int]:
    """The users trading in the new days (existing minus churned, plus new sign-ups and the
    regime's surge), and how many churned."""
    users = state.users
    churn = 1 - (1 - MONTHLY_CHURN) ** (len(new_days) / 21)
    staying = users[rng.random(len(users)) >= churn]
    n_usual = int(rng.poisson(state.signups_per_day * len(new_days)))
    n_new = n_usual + regime.surge_signups
    if n_new == 0:
        return staying.reset_index(drop=True), len(users) - len(staying)
    new = generate_users(n_new, new_days, rng)
    if regime.surge_signups:
        surge = new.index >= n_usual
        new.loc[surge, "archetype"] = regime.surge_archetype
        new.loc[surge, ["previous_archetype", "archetype_since", "secondary_archetype"]] = None
        new.loc[surge, "secondary_share"] = 0.0
    # Sign-ups during the new days (the seed's late sign-ups, spread over them).
    new["signup_date"] = new_days[rng.integers(0, len(new_days), size=n_new)]
    new["user_id"] = np.arange(state.max_user_id + 1, state.max_user_id + 1 + n_new)
    combined = pd.concat([staying, new[users.columns]], ignore_index=True)
    return combined, len(users) - len(staying)


def _trades(
    state: _State,
    users: pd.DataFrame,
    bars: pd.DataFrame,
    new_days: pd.DatetimeIndex,
    rng: np.random.Generator,
) -> pd.DataFrame:
    recent = state.bars[
        state.bars["ts"] >= state.bars["ts"].max() - pd.offsets.BDay(PANEL_HISTORY_DAYS)
    ]
    panel = PricePanel.from_bars(pd.concat([recent, bars], ignore_index=True))
    first_new = int(np.searchsorted(panel.calendar, new_days[0]))
    # Positions opened at the warehouse's rate so far, grown by what users beyond it (a
    # surge) add; their closes follow from the holding periods.
    activity = users["archetype"].map(lambda name: ARCHETYPE_BY_NAME[name].activity)
    before = activity[users["user_id"] <= state.max_user_id].sum()
    growth = float(activity.sum() / before) if before > 0 else 1.0
    positions = state.opens_per_day * len(new_days) * growth
    trades = simulate_trades(
        users, panel, first_new, 0, rng, positions=positions, habits=state.habits
    )
    trades = trades[trades["ts"] >= new_days[0]].copy()
    trades["trade_id"] += state.max_trade_id
    trades["position_id"] += state.max_position_id
    return trades


def _headlines(
    state: _State, bars: pd.DataFrame, new_days: pd.DatetimeIndex, rng: np.random.Generator
) -> pd.DataFrame:
    last = state.bars[state.bars["ts"] == state.bars["ts"].max()]
    generated = generate_headlines(pd.concat([last, bars], ignore_index=True), rng, state.sectors)
    generated = generated[generated["ts"] >= new_days[0]].copy()
    generated["headline_id"] = np.arange(
        state.max_headline_id + 1, state.max_headline_id + 1 + len(generated)
    )
    return generated
