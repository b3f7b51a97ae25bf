"""The incremental extract: the warehouse's daily aggregates, kept under the data dir.

``extract/manifest.json`` names the current version and its watermark (the newest day
extracted); each version is a folder of parquet partitions, one per dataset and month. A run
reads from the warehouse only the days after the watermark minus ``extract_lookback_days``
(rows that arrive late), or, on the first run, ``extract_history_days`` before the newest
trade (bars reach further back by the features' warm-up, before each symbol's newest bar),
keeps the older days of the current version (unchanged months are hard links), and drops
what fell out of the window, so the result equals a full extraction of the same window.

Two steps, so that a failed run leaves the current extract and its watermark as they were:
``stage_extract`` writes a new version (into a temporary folder, renamed when complete) and
``staged.json`` naming it; ``publish_extract`` makes it current with one atomic rename.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from trademaster.features.market_features import WARMUP_BARS
from trademaster.features.user_features import MOMENTUM_BARS, WINDOW
from trademaster.settings import PipelineSettings
from trademaster.warehouse import aggregates
from trademaster.warehouse.read import redacted_url, warehouse_connection

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STAGED = "staged.json"
USERS_FILE = "users.parquet"
# Calendar days of bars before a symbol's window: market features drop their first
# WARMUP_BARS bars and entry momentum needs MOMENTUM_BARS + 1 (5 bars a week, plus holidays).
BAR_WARMUP_DAYS = math.ceil(max(WARMUP_BARS, MOMENTUM_BARS + 1) * 7 / 5) + 14
# A day for all rows, or one per symbol.
Days = date | Mapping[str, date]


@dataclass(frozen=True)
class Dataset:
    name: str
    columns: dict[str, str]  # column -> dtype, in order
    key: tuple[str, ...]  # one row per key; rows are kept sorted by it
    query: Callable[[Any], sa.Select[Any]]

    def typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            frame = pd.DataFrame(columns=list(self.columns))
        typed = frame[list(self.columns)].astype(self.columns)
        return typed.sort_values(list(self.key), ignore_index=True)


OPENS = Dataset(
    "opens_by_user_symbol_day",
    {
        "user_id": "int64",
        "day": "datetime64[ns]",
        "symbol": "object",
        "n_opened": "int64",
        "notional_usd": "float64",
        "leverage": "float64",
        "exposure": "float64",
        "n_short": "int64",
    },
    ("day", "user_id", "symbol"),
    aggregates.opens_by_user_symbol_day,
)
CLOSES = Dataset(
    "closes_by_user_day",
    {
        "user_id": "int64",
        "day": "datetime64[ns]",
        "n_closed": "int64",
        "holding_days": "float64",
        "n_won": "int64",
    },
    ("day", "user_id"),
    aggregates.closes_by_user_day,
)
BARS = Dataset(
    "bars_by_symbol_day",
    {
        "symbol": "object",
        "day": "datetime64[ns]",
        **dict.fromkeys(("open", "high", "low", "close", "volume"), "float64"),
    },
    ("day", "symbol"),
    aggregates.bars_by_symbol_day,
)
DATASETS = (OPENS, CLOSES, BARS)


@dataclass(frozen=True)
class Manifest:
    version: str
    watermark: str  # the newest day extracted (trade or bar)
    source: str  # the warehouse, password hidden
    history_days: int
    first_trade_day: str  # the warehouse's, when extracted
    trades_from: str  # the first day of the trade window
    read: dict[str, Any] = field(default_factory=dict)  # what this version's run read

    def matches(self, settings: PipelineSettings) -> bool:
        """Whether a run with ``settings`` may continue this extract (same source, window)."""
        return (self.source, self.history_days) == (
            redacted_url(settings.resolved_warehouse_url),
            settings.extract_history_days,
        )


@dataclass(frozen=True)
class DailyExtract:
    manifest: Manifest
    opens: pd.DataFrame
    closes: pd.DataFrame
    bars: pd.DataFrame
    user_ids: np.ndarray

    def frame(self, dataset: Dataset) -> pd.DataFrame:
        return {OPENS.name: self.opens, CLOSES.name: self.closes, BARS.name: self.bars}[
            dataset.name
        ]

    @property
    def snapshot_start(self) -> pd.Timestamp:
        """The first day whose 90-day window the extract holds whole: the first trade, or 90
        days into the window where the window cut older trades off."""
        first = pd.Timestamp(self.manifest.first_trade_day)
        window_start = pd.Timestamp(self.manifest.trades_from)
        return first if first >= window_start else window_start + WINDOW


def extract_dir(settings: PipelineSettings) -> Path:
    return settings.resolved_data_dir / "extract"


def stage_extract(settings: PipelineSettings) -> Manifest:
    """Reads what is new in the warehouse, writes the next version and names it staged."""
    root = extract_dir(settings)
    published = _read_manifest(root / MANIFEST)
    _remove_unreferenced(root, keep=published.version if published else None)
    base = published if published and published.matches(settings) else None
    if published and base is None:
        log.info("extract %s is of another warehouse or window: extracting anew", published.version)
    previous = load_version(root, base) if base else None
    frames, manifest = _extract(settings, previous, _next_version(root))
    _write_version(root, manifest, frames, previous)
    _write_json(root / STAGED, asdict(manifest))
    return manifest


def publish_extract(settings: PipelineSettings) -> Manifest | None:
    """Makes the staged version current (moving the watermark); None if none is staged."""
    root = extract_dir(settings)
    manifest = _read_manifest(root / STAGED)
    if manifest is None:
        return None
    os.replace(root / STAGED, root / MANIFEST)
    log.info("extract %s published: watermark %s", manifest.version, manifest.watermark)
    return manifest


def current_extract(settings: PipelineSettings) -> DailyExtract:
    """The published extract; one is extracted and published first if there is none for
    these settings (a run outside the DAG)."""
    root = extract_dir(settings)
    manifest = _read_manifest(root / MANIFEST)
    if manifest is None or not manifest.matches(settings):
        log.info("no extract of %s yet", redacted_url(settings.resolved_warehouse_url))
        stage_extract(settings)
        manifest = publish_extract(settings)
    assert manifest is not None
    return load_version(root, manifest)


def load_version(root: Path, manifest: Manifest) -> DailyExtract:
    folder = root / manifest.version
    opens, closes, bars = (_read_dataset(folder, dataset) for dataset in DATASETS)
    users = pd.read_parquet(folder / USERS_FILE)["user_id"].to_numpy()
    return DailyExtract(manifest, opens, closes, bars, users)


@dataclass(frozen=True)
class _Plan:
    """Which days a run reads (``*_since``) and keeps (``*_from``)."""

    trades_from: date
    trades_since: date
    bars_from: dict[str, date]
    bars_since: dict[str, date]


def _plan(
    settings: PipelineSettings,
    previous: DailyExtract | None,
    last_trade_day: date,
    last_bars: dict[str, date],
) -> _Plan:
    history = timedelta(days=settings.extract_history_days)
    trades_from = last_trade_day - history
    bars_from = {
        symbol: last - history - timedelta(days=BAR_WARMUP_DAYS)
        for symbol, last in last_bars.items()
    }
    if previous is None:
        return _Plan(trades_from, trades_from, bars_from, bars_from)
    redo = date.fromisoformat(previous.manifest.watermark) - timedelta(
        days=settings.extract_lookback_days
    )
    known = set(previous.bars["symbol"])
    # A symbol new to the extract is read over its whole window.
    bars_since = {
        symbol: max(first, redo) if symbol in known else first
        for symbol, first in bars_from.items()
    }
    return _Plan(trades_from, max(trades_from, redo), bars_from, bars_since)


def _extract(
    settings: PipelineSettings, previous: DailyExtract | None, version: str
) -> tuple[dict[str, pd.DataFrame], Manifest]:
    with warehouse_connection(settings) as connection:
        span = aggregates.trade_day_span(connection)
        last_bars = aggregates.last_bar_days(connection)
        if span is None or not last_bars:
            raise ValueError("the warehouse holds no trades or no daily bars to extract")
        plan = _plan(settings, previous, span[1], last_bars)
        fetched = {
            dataset.name: dataset.typed(aggregates.fetch(connection, dataset.query(since)))
            for dataset, since in (
                (OPENS, plan.trades_since),
                (CLOSES, plan.trades_since),
                (BARS, plan.bars_since),
            )
        }
        users = aggregates.user_ids(connection)
    frames = {
        OPENS.name: _merged(previous, OPENS, fetched, plan.trades_since, plan.trades_from),
        CLOSES.name: _merged(previous, CLOSES, fetched, plan.trades_since, plan.trades_from),
        BARS.name: _merged(previous, BARS, fetched, plan.bars_since, plan.bars_from),
        USERS_FILE: pd.DataFrame({"user_id": np.asarray(users, dtype="int64")}),
    }
    manifest = Manifest(
        version=version,
        watermark=max(span[1], *last_bars.values()).isoformat(),
        source=redacted_url(settings.resolved_warehouse_url),
        history_days=settings.extract_history_days,
        first_trade_day=span[0].isoformat(),
        trades_from=plan.trades_from.isoformat(),
        read=_read_report(fetched, plan, span[1], incremental=previous is not None),
    )
    return frames, manifest


def _merged(
    previous: DailyExtract | None,
    dataset: Dataset,
    fetched: dict[str, pd.DataFrame],
    since: Days,
    first: Days,
) -> pd.DataFrame:
    """The previous version's rows before ``since``, the fetched rows, none before ``first``."""
    parts = [fetched[dataset.name]]
    if previous is not None:
        old = previous.frame(dataset)
        parts.insert(0, old[old["day"] < _days(old, since)])
    merged = pd.concat(parts, ignore_index=True)
    return dataset.typed(merged[merged["day"] >= _days(merged, first)])


def _days(frame: pd.DataFrame, days: Days) -> pd.Series | pd.Timestamp:
    """One day for every row, or each row's symbol's day (NaT for a symbol not in ``days``:
    its rows are dropped)."""
    if isinstance(days, date):
        return pd.Timestamp(days)
    as_timestamps = {symbol: pd.Timestamp(day) for symbol, day in days.items()}
    return pd.to_datetime(frame["symbol"].map(as_timestamps))


def _read_report(
    fetched: dict[str, pd.DataFrame], plan: _Plan, last_trade_day: date, incremental: bool
) -> dict[str, Any]:
    opens, closes, bars = (fetched[dataset.name] for dataset in DATASETS)
    report = {
        "incremental": incremental,
        "trades_since": plan.trades_since.isoformat(),
        "trade_days": int(pd.concat([opens["day"], closes["day"]]).nunique()),
        "trades_aggregated": int(opens["n_opened"].sum() + closes["n_closed"].sum()),
        "bars_since": min(plan.bars_since.values()).isoformat(),
        "bar_days": int(bars["day"].nunique()),
        "rows": {name: len(frame) for name, frame in fetched.items()},
    }
    log.info(
        "extract (%s): trades %s..%s, %d days, %d trades read as %d + %d aggregate rows; "
        "bars from %s, %d days, %d rows",
        "incremental" if incremental else "first run",
        plan.trades_since,
        last_trade_day,
        report["trade_days"],
        report["trades_aggregated"],
        len(opens),
        len(closes),
        report["bars_since"],
        report["bar_days"],
        len(bars),
    )
    return report


def _write_version(
    root: Path,
    manifest: Manifest,
    frames: dict[str, pd.DataFrame],
    previous: DailyExtract | None,
) -> None:
    """Writes the version's partitions into a temporary folder, then renames it into place;
    a month the previous version holds unchanged is hard-linked."""
    temporary = root / f".tmp-{uuid.uuid4().hex}"
    temporary.mkdir(parents=True)
    try:
        for dataset in DATASETS:
            old = previous.frame(dataset) if previous else None
            old_folder = root / previous.manifest.version / dataset.name if previous else None
            _write_partitions(temporary / dataset.name, frames[dataset.name], old, old_folder)
        frames[USERS_FILE].to_parquet(temporary / USERS_FILE, index=False)
        temporary.rename(root / manifest.version)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _write_partitions(
    folder: Path, frame: pd.DataFrame, old: pd.DataFrame | None, old_folder: Path | None
) -> None:
    folder.mkdir()
    old_months = dict(tuple(old.groupby(_month(old)))) if old is not None else {}
    for month, rows in frame.groupby(_month(frame)):
        target = folder / f"{month}.parquet"
        rows = rows.reset_index(drop=True)
        same = month in old_months and old_months[month].reset_index(drop=True).equals(rows)
        if same and old_folder is not None:
            os.link(old_folder / target.name, target)
        else:
            rows.to_parquet(target, index=False)


def _month(frame: pd.DataFrame) -> pd.Series:
    """``YYYY-MM`` of each row's day (strftime is slow on 10^5 rows)."""
    day = frame["day"].dt
    number = day.year * 100 + day.month
    return number.map({n: f"{n // 100:04d}-{n % 100:02d}" for n in number.unique()})


def _read_dataset(folder: Path, dataset: Dataset) -> pd.DataFrame:
    if not any((folder / dataset.name).glob("*.parquet")):
        return dataset.typed(pd.DataFrame())
    return dataset.typed(pd.read_parquet(folder / dataset.name))


def _read_manifest(path: Path) -> Manifest | None:
    return Manifest(**json.loads(path.read_text())) if path.exists() else None


def _next_version(root: Path) -> str:
    numbers = [int(path.name[1:]) for path in root.glob("v[0-9]*") if path.name[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1:06d}"


def _remove_unreferenced(root: Path, keep: str | None) -> None:
    """Versions other than the published one (a staged one that was never published,
    leftovers of a failed write)."""
    if not root.exists():
        return
    (root / STAGED).unlink(missing_ok=True)
    for path in root.iterdir():
        if path.is_dir() and path.name != keep:
            shutil.rmtree(path)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(json.dumps(content, indent=2, sort_keys=True))
    os.replace(temporary, path)
