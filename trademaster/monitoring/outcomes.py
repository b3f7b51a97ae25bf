"""What happened after a served answer: each model's logged predictions joined with the
outcome the warehouse (read only) records later.

Every join is a pure function of logged rows (``read_predictions``' frame) and warehouse
frames, and returns one row per **observation** with the columns of ``OBSERVATION_COLUMNS``:

- ``known_at``: when the outcome became known (UTC; NaT while there is none);
- ``due``: whether the data the outcome would come from already cover the answer, so that
  no outcome there means none will come (the answer is *missing* a label); an answer that is
  not labelled and not due is *pending* and left out of label coverage's denominator;
- ``truth`` and ``predicted``, and for interval forecasts ``lower``, ``upper``, ``level``;
- ``group``: what makes observations dependent (the bootstrap resamples whole groups);
- ``entity``, ``route``, ``logged_at`` of the answer kept.

An observation is one outcome event per version: the answers that one outcome judges (a
client asking about the same user and symbol many times before one position opens, the
same window of a symbol within one bar, the same text) count once, as the latest of them,
so one busy client does not outweigh the rest. Distinct outcomes of the same user still
count each (a user's positions are different events); the clustered bootstrap accounts for
their dependence.

Model-specific knowledge (the risk label) is passed in by the caller: model packages sit
above monitoring (tests/unit/test_layering.py), so the definition stays in its one home.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from trademaster.features.price_window import available_at

# Routes whose answers reached a client (shadow answers were only compared).
SERVED_ROUTES = ("primary", "canary")
OBSERVATION_COLUMNS = (
    "model_version",
    "route",
    "entity",
    "logged_at",
    "group",
    "known_at",
    "due",
    "truth",
    "predicted",
)
INTERVAL_COLUMNS = ("lower", "upper", "level")

# (opening trades, daily bars, horizon in bars, loss threshold) -> the opens whose outcome is
# known, with a 0/1 ``label``: ``trademaster.risk.labels.adverse_move_labels``.
RiskLabeller = Callable[[pd.DataFrame, pd.DataFrame, int, float], pd.DataFrame]


def served(logged: pd.DataFrame) -> pd.DataFrame:
    """The answers clients received (primary and canary routes), oldest first."""
    if logged.empty:
        return logged.iloc[0:0].copy()
    rows = logged[logged["route"].isin(SERVED_ROUTES)].copy()
    rows["logged_at"] = pd.to_datetime(rows["logged_at"], utc=True)
    return rows.sort_values("logged_at", kind="stable").reset_index(drop=True)


def input_key(entity: Mapping[str, Any] | None, stamps: Mapping[str, Any] | None) -> str:
    """Identifies one served input: the entity and the event times of the features read."""
    return repr((sorted((entity or {}).items()), sorted((stamps or {}).items())))


def one_per_event(frame: pd.DataFrame, event: Sequence[Any]) -> pd.DataFrame:
    """The latest answer of each (version, ``event``); ``frame`` is sorted by ``logged_at``."""
    keyed = frame.assign(_event=list(event))
    kept = keyed.drop_duplicates(["model_version", "_event"], keep="last")
    return kept.drop(columns="_event").reset_index(drop=True)


def utc(values: pd.Series) -> pd.Series:
    """Warehouse times (naive UTC) or ISO strings as aware UTC timestamps (same index)."""
    return pd.Series(pd.to_datetime(values, utc=True), index=values.index)


def empty_observations(extra: Sequence[str] = ()) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in (*OBSERVATION_COLUMNS, *extra)})


def _observations(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    out = frame.reindex(columns=[*OBSERVATION_COLUMNS, *extra]).reset_index(drop=True)
    out["known_at"] = pd.to_datetime(out["known_at"], utc=True)
    out["due"] = out["due"].astype(bool)
    out["model_version"] = out["model_version"].astype(int)
    return out


# --- risk-assessment-model ----------------------------------------------------------------


def risk_outcomes(
    logged: pd.DataFrame,
    trades: pd.DataFrame,
    daily: pd.DataFrame,
    labeller: RiskLabeller,
    horizon: int,
    loss_threshold: float,
    match_window: timedelta,
) -> pd.DataFrame:
    """The position each risk answer assessed and whether it lost ``loss_threshold`` of its
    margin within ``horizon`` daily bars (the training label, by ``labeller``).

    The assessed position is the user's first opening trade in that symbol at or after the
    answer, within ``match_window`` (the app asks before an order; a position opened days
    later was decided on other features). It is known when the ``horizon``-th bar after the
    opening session has closed. An answer with no position in the window is missing its
    label once the warehouse's trades reach past the window (the user did not trade: label
    coverage of the risk model is the share of assessments followed by a position); a
    position whose horizon has not passed is pending. The answers that precede one position
    count once (the latest); the group is the user.
    """
    rows = served(logged)
    if rows.empty:
        return empty_observations()
    rows["user_id"] = [int(entity["user_id"]) for entity in rows["entity"]]
    rows["symbol"] = [str(entity["symbol"]) for entity in rows["entity"]]
    opens = trades[trades["action"] == "open"].copy()
    opens["opened_at"] = utc(opens["ts"])
    opens["user_id"] = opens["user_id"].astype(int)
    opens["symbol"] = opens["symbol"].astype(str)
    matched = pd.merge_asof(
        rows.sort_values("logged_at"),
        opens[["trade_id", "user_id", "symbol", "opened_at"]].sort_values("opened_at"),
        left_on="logged_at",
        right_on="opened_at",
        by=["user_id", "symbol"],
        direction="forward",
        tolerance=pd.Timedelta(match_window),
    )
    labelled = labeller(opens.drop(columns="opened_at"), daily, horizon, loss_threshold)
    label_of = dict(zip(labelled["trade_id"], labelled["label"], strict=True))
    known_of = _horizon_closes(labelled, daily, horizon)
    trades_until = utc(trades["ts"]).max() if len(trades) else pd.NaT
    has_bars = set(daily["symbol"].astype(str))
    position = matched["trade_id"]
    found = position.notna()
    matched["truth"] = [label_of.get(trade, np.nan) for trade in position]
    matched["known_at"] = [known_of.get(trade, pd.NaT) for trade in position]
    window_over = (matched["logged_at"] + pd.Timedelta(match_window)) <= trades_until
    # A matched position in a symbol without daily bars can never be labelled.
    matched["due"] = np.where(found, ~matched["symbol"].isin(has_bars), window_over)
    matched["predicted"] = matched["prediction"].astype(float)
    matched["group"] = matched["user_id"]
    event = [
        f"position:{int(trade)}" if pd.notna(trade) else input_key(entity, stamps)
        for trade, entity, stamps in zip(
            position, matched["entity"], matched["feature_timestamps"], strict=True
        )
    ]
    return _observations(one_per_event(matched, event))


def _horizon_closes(labelled: pd.DataFrame, daily: pd.DataFrame, horizon: int) -> dict[Any, Any]:
    """trade_id -> when the ``horizon``-th daily bar after the trade's session closed (the
    bar the label looks at last), as ``adverse_move_labels`` indexes the bars."""
    out: dict[Any, Any] = {}
    for symbol, trades in labelled.groupby("symbol"):
        days = np.sort(daily.loc[daily["symbol"] == symbol, "ts"].to_numpy())
        if not len(days):
            continue
        entry = np.searchsorted(days, pd.to_datetime(trades["ts"]).dt.normalize().to_numpy())
        last = np.minimum(entry + horizon, len(days) - 1)
        closes = available_at(pd.Series(days[last]), "1d")
        out.update(zip(trades["trade_id"], closes, strict=True))
    return out


# --- price-prediction-lstm ----------------------------------------------------------------


def price_outcomes(logged: pd.DataFrame, bars: pd.DataFrame) -> pd.DataFrame:
    """The log return of the bar after the window each answer used, with its interval.

    The window's event time in the log (``feature_timestamps``) is when its newest bar
    closed (``available_at``): that bar is the symbol's latest bar closed by then. The target
    is the next bar's log return (``log(close / previous close)``, the training target) and
    is known when that bar closes; until it is in the warehouse the answer is pending. A
    symbol or time the warehouse does not have is missing. One observation per version,
    symbol and window (identical inputs); the group is the target bar's close, since one
    market day moves every symbol (the market factor).
    """
    rows = served(logged)
    if rows.empty:
        return empty_observations(INTERVAL_COLUMNS)
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for (symbol, interval), symbol_rows in bars.groupby(["symbol", "interval"]):
        ordered = symbol_rows.sort_values("ts")
        closed = available_at(ordered["ts"], str(interval))
        series[str(symbol)] = (
            closed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(),
            ordered["close"].to_numpy(dtype=np.float64),
        )
    records = []
    for row in rows.itertuples(index=False):
        stamps = row.feature_timestamps or {}
        stamp = next(iter(stamps.values()), None)
        found = series.get(str((row.entity or {}).get("symbol")))
        interval = row.interval or {}
        record = {
            "model_version": row.model_version,
            "route": row.route,
            "entity": row.entity,
            "logged_at": row.logged_at,
            "predicted": float(row.prediction),
            "lower": float(interval.get("lower", np.nan)),
            "upper": float(interval.get("upper", np.nan)),
            "level": float(interval.get("level", np.nan)),
            "known_at": pd.NaT,
            "truth": np.nan,
            "group": None,
            "due": True,
            "_event": input_key(row.entity, stamps),
        }
        if stamp is not None and found is not None:
            closed, close = found
            moment = pd.Timestamp(stamp).tz_convert("UTC").tz_localize(None).to_datetime64()
            used = int(np.searchsorted(closed, moment, side="right")) - 1
            if used >= 0 and used + 1 < len(close):
                known = pd.Timestamp(closed[used + 1], tz="UTC")
                record.update(
                    truth=float(np.log(close[used + 1]) - np.log(close[used])),
                    known_at=known,
                    group=str(known),
                )
            elif used >= 0:
                record["due"] = False  # the next bar has not closed (or is not in yet)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    return _observations(
        one_per_event(frame.drop(columns="_event"), frame["_event"]), INTERVAL_COLUMNS
    )


# --- behavioral-pattern-classifier --------------------------------------------------------


def behavior_outcomes(
    logged: pd.DataFrame,
    users: pd.DataFrame,
    population: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The archetype in effect for the user when the answer was given (``archetype_at``, the
    training label), known at once: it is the generator's ground truth (a real platform
    would learn it later, from a survey or an analyst; the delay series would show that).

    ``population``: the rule the validated figure's rows obeyed (the version's reference
    profile, e.g. at least 3 trades in the window); answers on other inputs are left out, as
    the holdout left such snapshots out. One observation per version, user and feature
    snapshot (identical inputs); the group is the user. A user the warehouse does not know
    is missing.
    """
    from trademaster.warehouse.users import archetype_at

    rows = served(logged)
    if not rows.empty and population:
        keep = np.ones(len(rows), bool)
        for column, minimum in population.items():
            values = [(features or {}).get(column) for features in rows["features"]]
            keep &= np.array([value is None or value >= minimum for value in values])
        rows = rows[keep].reset_index(drop=True)
    if rows.empty:
        return empty_observations()
    event = [
        input_key(e, s) for e, s in zip(rows["entity"], rows["feature_timestamps"], strict=True)
    ]
    rows = one_per_event(rows, event)
    ids = np.array([int(entity["user_id"]) for entity in rows["entity"]])
    known = np.isin(ids, users["user_id"].to_numpy())
    truth = np.full(len(rows), None, dtype=object)
    if known.any():
        truth[known] = archetype_at(
            users, ids[known], rows["logged_at"][known].reset_index(drop=True)
        )
    rows["truth"] = truth
    rows["known_at"] = rows["logged_at"].where(known)
    rows["due"] = True
    rows["predicted"] = rows["prediction"].astype(str)
    rows["group"] = ids
    return _observations(rows)


# --- sentiment-analyzer -------------------------------------------------------------------


def sentiment_class(prediction: Any, probabilities: Any = None) -> str | None:
    """The class an answer predicted: a logged label, or the argmax of logged probabilities.
    None for the score alone (P(positive) - P(negative) does not determine the argmax)."""
    if isinstance(prediction, str):
        return prediction
    if isinstance(prediction, Mapping):
        if isinstance(prediction.get("label"), str):
            return str(prediction["label"])
        probabilities = prediction.get("probabilities", probabilities)
    if isinstance(probabilities, Mapping) and probabilities:
        return str(max(probabilities.items(), key=lambda item: float(item[1]))[0])
    return None


def sentiment_outcomes(logged: pd.DataFrame, headlines: pd.DataFrame) -> pd.DataFrame:
    """The generated label of the headline with the answer's text (joined on the text),
    known when the headline was published (at once, for a headline asked about after
    that). A text no headline has is missing once the warehouse's headlines reach past the
    answer, pending before (today's headline may arrive with the next extract). One
    observation per version and text; rows are independent (no group).

    ``predicted`` is None where the log keeps only the score (see ``sentiment_class``)."""
    rows = served(logged)
    if rows.empty:
        return empty_observations()
    rows["text"] = [str((entity or {}).get("text", "")) for entity in rows["entity"]]
    rows = one_per_event(rows, rows["text"])
    first = (
        headlines.assign(published=utc(headlines["ts"]))
        .sort_values("published", kind="stable")
        .drop_duplicates("headline")
        .set_index("headline")
    )
    found = rows["text"].isin(first.index)
    published = utc(rows["text"].map(first["published"]))
    headlines_until = utc(headlines["ts"]).max() if len(headlines) else pd.NaT
    rows["truth"] = rows["text"].map(first["label"]).where(found, None)
    # Asked about before it was published: known at publication; after: at once.
    rows["known_at"] = published.where(published > rows["logged_at"], rows["logged_at"])
    rows["known_at"] = rows["known_at"].where(found)
    rows["due"] = found | (rows["logged_at"] <= headlines_until)
    probabilities = rows["probabilities"] if "probabilities" in rows else [None] * len(rows)
    rows["predicted"] = [
        sentiment_class(prediction, probs)
        for prediction, probs in zip(rows["prediction"], probabilities, strict=True)
    ]
    rows["group"] = None
    return _observations(rows)
