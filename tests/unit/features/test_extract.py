"""The incremental extract of a seeded warehouse, and the user features computed from it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.unit.warehouse.helpers import small_settings
from trademaster.features import extract as extract_module
from trademaster.features.build import extract_user_features
from trademaster.features.extract import (
    DATASETS,
    MANIFEST,
    DailyExtract,
    current_extract,
    extract_dir,
    publish_extract,
    stage_extract,
)
from trademaster.features.user_features import USER_FEATURES, WINDOW, WINDOW_BUSINESS_DAYS
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.advance import advance_market
from trademaster.warehouse.market import daily_bars
from trademaster.warehouse.read import read_table
from trademaster.warehouse.seed import seed_warehouse

TODAY = date(2026, 9, 30)  # months after the small warehouse's END_DATE
# The features are float32: the SQL path and the reference sum in different orders.
RTOL, ATOL = 1e-5, 1e-6


def _settings(tmp_path: Path, name: str, warehouse: Path) -> PipelineSettings:
    return small_settings(data_dir=tmp_path / name, warehouse_url=f"sqlite:///{warehouse}")


@pytest.fixture
def seeded(tmp_path: Path) -> PipelineSettings:
    settings = _settings(tmp_path, "run", tmp_path / "warehouse.db")
    seed_warehouse(settings)
    return settings


def _extract_and_publish(settings: PipelineSettings) -> DailyExtract:
    stage_extract(settings)
    publish_extract(settings)
    return current_extract(settings)


def _user_features(extract: DailyExtract) -> pd.DataFrame:
    daily = extract.bars.rename(columns={"day": "ts"})
    features = extract_user_features(extract, daily)
    return features.sort_values(["user_id", "event_timestamp"], ignore_index=True)


def _reference_features(
    trades: pd.DataFrame, users: pd.DataFrame, daily: pd.DataFrame, days: pd.DatetimeIndex
) -> pd.DataFrame:
    """The features by their definitions, snapshot by snapshot, from the raw trades."""
    opens = trades[trades["action"] == "open"].set_index("position_id")
    closes = trades[trades["action"] == "close"].set_index("position_id")
    positions = opens.join(closes[["ts", "price"]].add_prefix("close_"))
    sign = np.where(positions["direction"] == "long", 1.0, -1.0)
    positions["won"] = sign * (positions["close_price"] / positions["price"] - 1) > 0
    positions["held"] = (positions["close_ts"] - positions["ts"]) / pd.Timedelta(days=1)
    capital = positions["user_id"].map(users.set_index("user_id")["capital_usd"])
    positions["exposure"] = positions["notional_usd"] * positions["leverage"] / capital
    closes_by_day = daily.pivot(index="ts", columns="symbol", values="close")
    momentum = closes_by_day.shift(1) / closes_by_day.shift(21) - 1
    entry_day = positions["ts"].dt.normalize()
    stacked = momentum.stack()
    keys = pd.MultiIndex.from_arrays([entry_day, positions["symbol"]])
    positions["momentum"] = np.nan_to_num(stacked.reindex(keys).to_numpy())
    rows = []
    for user_id, book in positions.groupby("user_id"):
        for day in days:
            cutoff = day + pd.Timedelta(days=1)
            start = cutoff - WINDOW
            opened = book[(book["ts"] >= start) & (book["ts"] < cutoff)]
            shut = book[(book["close_ts"] >= start) & (book["close_ts"] < cutoff)]
            rows.append(_reference_snapshot(int(user_id), cutoff, opened, shut))
    return pd.DataFrame(rows)


def _reference_snapshot(
    user_id: int, cutoff: pd.Timestamp, opened: pd.DataFrame, shut: pd.DataFrame
) -> dict[str, object]:
    n = len(opened)
    row: dict[str, object] = {"user_id": user_id, "event_timestamp": cutoff.tz_localize("UTC")}
    row["trades_in_window"] = n
    row["trade_frequency"] = n / WINDOW_BUSINESS_DAYS
    row["win_rate"] = shut["won"].mean() if len(shut) else 0.5
    row["avg_holding_days"] = shut["held"].mean() if len(shut) else 0.0
    if n == 0:
        zeros = ("avg_trade_size", "avg_leverage", "short_ratio", "entry_momentum")
        return row | dict.fromkeys((*zeros, "portfolio_diversity", "risk_score"), 0.0)
    shares = opened.groupby("symbol")["notional_usd"].sum() / opened["notional_usd"].sum()
    diversity = 1 - (shares**2).sum()
    leverage = opened["leverage"].mean()
    return row | {
        "avg_trade_size": opened["notional_usd"].mean(),
        "avg_leverage": leverage,
        "short_ratio": (opened["direction"] == "short").mean(),
        "entry_momentum": opened["momentum"].mean(),
        "portfolio_diversity": diversity,
        "risk_score": opened["exposure"].mean() * (1 + leverage) * (2 - diversity) / 2,
    }


def test_features_from_the_sql_aggregates_equal_a_pandas_computation_on_raw_trades(
    seeded: PipelineSettings,
) -> None:
    features = _user_features(_extract_and_publish(seeded))

    trades = read_table(seeded, schema.trades)
    users = read_table(seeded, schema.users)
    daily = daily_bars(read_table(seeded, schema.market_data))
    days = pd.DatetimeIndex(features["event_timestamp"].dt.tz_localize(None).unique())
    # Every fifth snapshot day (the reference is slow), and the last.
    sample = days[::5].append(days[-1:]) - pd.Timedelta(days=1)
    expected = _reference_features(trades, users, daily, sample)
    assert days[0] - pd.Timedelta(days=1) == trades["ts"].min().normalize()

    key = ["user_id", "event_timestamp"]
    got = features[features["event_timestamp"].isin(expected["event_timestamp"])]
    got = got[got["user_id"].isin(expected["user_id"])]
    merged = expected.merge(got, on=key, suffixes=("_expected", ""), validate="one_to_one")
    assert len(merged) == len(expected) > 1_000
    assert (merged["trades_in_window"] > 0).mean() > 0.5
    for name in USER_FEATURES:
        np.testing.assert_allclose(
            merged[name], merged[f"{name}_expected"], rtol=RTOL, atol=ATOL, err_msg=name
        )


def _frames_equal(first: DailyExtract, second: DailyExtract) -> None:
    for dataset in DATASETS:
        pd.testing.assert_frame_equal(first.frame(dataset), second.frame(dataset))
    np.testing.assert_array_equal(first.user_ids, second.user_ids)


def test_a_second_run_reads_the_new_days_and_its_lookback_only(
    tmp_path: Path, seeded: PipelineSettings
) -> None:
    first = _extract_and_publish(seeded)
    arrived = advance_market(seeded, days=3, today=TODAY)

    second = _extract_and_publish(seeded)

    read = second.manifest.read
    watermark = date.fromisoformat(first.manifest.watermark)
    reread_from = watermark - timedelta(days=seeded.extract_lookback_days)
    assert read["incremental"] is True
    assert read["trades_since"] == read["bars_since"] == reread_from.isoformat()
    assert second.manifest.watermark == arrived.last_day
    trades = read_table(seeded, schema.trades)
    in_range = trades[trades["ts"] >= pd.Timestamp(reread_from)]
    assert read["trades_aggregated"] == len(in_range) < len(trades) / 5
    assert read["trade_days"] == in_range["ts"].dt.normalize().nunique()
    assert first.manifest.read["trades_aggregated"] == len(trades) - arrived.trades

    # The same extract, and so the same features, as a full extraction of the new warehouse.
    fresh = _extract_and_publish(_settings(tmp_path, "fresh", tmp_path / "warehouse.db"))
    assert fresh.manifest.read["incremental"] is False
    _frames_equal(second, fresh)
    pd.testing.assert_frame_equal(_user_features(second), _user_features(fresh))


def test_unchanged_months_are_hard_links_to_the_previous_version(
    seeded: PipelineSettings,
) -> None:
    first = _extract_and_publish(seeded)
    advance_market(seeded, days=1, today=TODAY)
    second = _extract_and_publish(seeded)

    root = extract_dir(seeded)
    opens = sorted((root / second.manifest.version / DATASETS[0].name).glob("*.parquet"))
    linked = [path.name for path in opens if path.stat().st_nlink > 1]
    assert len(opens) > 3
    # Every month before the re-read days is shared; the newest one was rewritten.
    assert len(linked) == len(opens) - 1
    assert opens[-1].name not in linked
    assert (root / first.manifest.version).exists()


def test_a_failed_extraction_leaves_the_extract_and_its_watermark(
    seeded: PipelineSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _extract_and_publish(seeded)
    manifest = (extract_dir(seeded) / MANIFEST).read_text()
    advance_market(seeded, days=2, today=TODAY)

    def disk_full(*args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(extract_module, "_write_partitions", disk_full)
    with pytest.raises(OSError, match="no space"):
        stage_extract(seeded)
    monkeypatch.undo()

    assert publish_extract(seeded) is None
    assert (extract_dir(seeded) / MANIFEST).read_text() == manifest
    assert [path.name for path in extract_dir(seeded).iterdir() if path.is_dir()] == [
        before.manifest.version
    ]
    _frames_equal(current_extract(seeded), before)


def test_a_staged_extract_is_not_current_until_published(seeded: PipelineSettings) -> None:
    before = _extract_and_publish(seeded)
    advance_market(seeded, days=2, today=TODAY)

    staged = stage_extract(seeded)  # e.g. validation then fails: never published

    assert current_extract(seeded).manifest == before.manifest
    # The next run starts again from the published watermark and drops the stale version.
    again = stage_extract(seeded)
    assert again.read["trades_since"] == staged.read["trades_since"]
    versions = sorted(path.name for path in extract_dir(seeded).iterdir() if path.is_dir())
    assert versions == [before.manifest.version, again.version]
    assert publish_extract(seeded) == again
    assert current_extract(seeded).manifest.watermark > before.manifest.watermark


def test_another_warehouse_is_extracted_anew_and_the_extract_kept(
    tmp_path: Path, seeded: PipelineSettings
) -> None:
    before = _extract_and_publish(seeded)
    other = seeded.model_copy(update={"warehouse_url": f"sqlite:///{tmp_path / 'other.db'}"})
    seed_warehouse(other)

    staged = stage_extract(other)

    assert staged.read["incremental"] is False
    assert current_extract(seeded).manifest == before.manifest
    stored = json.loads((extract_dir(seeded) / MANIFEST).read_text())
    assert stored["version"] == before.manifest.version
