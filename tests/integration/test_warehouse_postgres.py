"""The warehouse on PostgreSQL: only the SQLAlchemy URL changes, and the pipeline only reads it.

A real server holds the demo tables plus a table of the trading app's own; the whole DAG runs
as a role that may only ``SELECT``, a new trading day arrives (``market advance``, written by
the owner, as the trading app would), the DAG runs again on it, and after each run every
table is byte-for-byte what it was before the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.integration.stack import corrupt_warehouse, isolated_settings, run_cli
from trademaster.features.build import MARKET_FEATURES_FILE
from trademaster.features.extract import DATASETS, current_extract
from trademaster.launchers.postgres_server import PostgresServer
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.tools import MissingToolError
from trademaster.pipeline import tasks
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.advance import advance_market
from trademaster.warehouse.read import read_table
from trademaster.warehouse.seed import WarehouseNotEmpty, generate_frames, seed_warehouse
from trademaster.warehouse.validation import DataValidationError

pytestmark = pytest.mark.integration

READER = "ml_reader"
# Small enough for two DAG runs in a few minutes; large enough that every step runs.
SMALL: dict[str, Any] = {
    "n_users": 300,
    "n_trades": 10_000,
    "n_generated_symbols": 6,
    "history_business_days": 260,
    "trade_window_business_days": 150,
}


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except MissingToolError as exc:
        pytest.skip(str(exc))
    with server:
        yield server


def test_seed_extract_and_validate_against_a_real_postgres(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    sizes: dict[str, Any] = {
        "n_users": 100,
        "n_trades": 3_000,
        "n_generated_symbols": 6,
        "history_business_days": 200,
        "trade_window_business_days": 100,
    }
    settings = PipelineSettings(data_dir=tmp_path / "var", warehouse_url=postgres.url, **sizes)
    seed_warehouse(settings)
    summary = tasks.extract(settings)
    counts = tasks.validate_data(settings)
    stored = read_table(settings, schema.trades)
    stored_users = read_table(settings, schema.users)

    frames = generate_frames(settings)
    # ``style`` is the generator's ground truth for tests, not a warehouse column.
    expected = frames.trades.drop(columns="style")
    assert summary["url"].startswith("postgresql+psycopg://")
    assert summary["n_trades"] == counts["trades"] == len(expected)
    pd.testing.assert_frame_equal(
        stored.sort_values("trade_id", ignore_index=True)[expected.columns],
        expected.sort_values("trade_id", ignore_index=True),
        check_dtype=False,
    )
    # Users round-trip with their nullable drift and mix columns (NULL, not NaN or "None").
    users = stored_users.sort_values("user_id", ignore_index=True)
    assert (
        users["previous_archetype"].isna().sum() == frames.users["previous_archetype"].isna().sum()
    )
    assert users["archetype_since"].notna().sum() == frames.users["archetype_since"].notna().sum()
    assert set(users["secondary_archetype"].dropna()) <= set(frames.users["archetype"])

    # PostgreSQL computes the daily aggregates SQLite computes from the same rows.
    on_postgres = current_extract(settings)
    assert on_postgres.manifest.read["incremental"] is False
    assert on_postgres.manifest.read["trades_aggregated"] == len(expected)
    sqlite_settings = PipelineSettings(data_dir=tmp_path / "sqlite", **sizes)
    seed_warehouse(sqlite_settings)
    on_sqlite = current_extract(sqlite_settings)
    for dataset in DATASETS:
        pd.testing.assert_frame_equal(
            on_postgres.frame(dataset), on_sqlite.frame(dataset), rtol=1e-9
        )

    # A second seed would delete those rows: refused, saying what would be lost.
    with pytest.raises(WarehouseNotEmpty, match=r"trades \(3,\d{3} rows\).*--replace"):
        seed_warehouse(settings)

    # The contract's SQL counts what breaks it on PostgreSQL too, every problem in one message.
    corrupt_warehouse(
        postgres.url,
        "UPDATE trades SET leverage = 50 WHERE trade_id <= 2",
        "UPDATE headlines SET label = 'ecstatic' WHERE headline_id = 1",
        "DELETE FROM users WHERE user_id = 1",
    )
    with pytest.raises(DataValidationError) as failure:
        tasks.validate_data(settings)
    problems = str(failure.value).split("\n- ")[1:]
    orphans = int((stored["user_id"] == 1).sum())
    assert sorted(problems) == sorted(
        [
            "users: 99 rows, expected at least 100",
            "headlines: 1 rows violate 'label is negative, neutral or positive'",
            "trades: 2 rows violate 'leverage within [1, 10]'",
            f"trades: {orphans} rows reference unknown users",
        ]
    )


def _checksums(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of every row's text, in order, for every table in the database."""
    sums: dict[str, tuple[int, str]] = {}
    with engine.connect() as connection:
        for name in sorted(sa.inspect(connection).get_table_names()):
            # Table names come from the database's own catalog.
            aggregate = "count(*), coalesce(md5(string_agg(t::text, chr(10) ORDER BY t::text)), '')"
            query = f'SELECT {aggregate} FROM "{name}" t'  # noqa: S608
            count, digest = connection.execute(sa.text(query)).one()
            sums[name] = (int(count), str(digest))
    return sums


def test_the_dag_only_reads_a_warehouse_it_does_not_own(
    tmp_path: Path, postgres: PostgresServer, redis_server: RedisServer
) -> None:
    owner = sa.create_engine(postgres.url)
    # Ending a week ago, so that a new day can arrive.
    seeded_until = date.today() - timedelta(days=7)
    owner_settings = isolated_settings(
        tmp_path, warehouse_url=postgres.url, end_date=seeded_until, **SMALL
    )
    seed_warehouse(owner_settings)
    with owner.begin() as connection:
        # The trading app's own table, which the platform must never touch.
        connection.execute(sa.text("CREATE TABLE app_orders (id serial PRIMARY KEY, note text)"))
        connection.execute(
            sa.text(
                "INSERT INTO app_orders (note) SELECT 'order ' || g FROM generate_series(1, 500) g"
            )
        )
        connection.execute(sa.text(f"CREATE ROLE {READER} LOGIN"))
        connection.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}"))
    before = _checksums(owner)
    reader_url = sa.make_url(postgres.url).set(username=READER).render_as_string(False)
    settings = isolated_settings(
        tmp_path,
        warehouse_url=reader_url,
        end_date=seeded_until,
        feature_store_root=tmp_path / "feature_store",
        online_store_redis=f"127.0.0.1:{redis_server.port}",
        **SMALL,
    )

    def run_dag() -> None:
        completed = run_cli(settings, "pipeline", "run", timeout_s=900)
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, output[-6000:]
        assert "DAG trademaster_training finished: success" in output, output[-3000:]

    run_dag()
    assert _checksums(owner) == before
    assert before["app_orders"][0] == 500

    arrived = advance_market(owner_settings, days=1)
    after_new_day = _checksums(owner)
    assert after_new_day["app_orders"] == before["app_orders"]
    assert after_new_day["trades"][0] == before["trades"][0] + arrived.trades
    run_dag()
    assert _checksums(owner) == after_new_day
    # The second run read the new day and the lookback before it, not the whole history.
    extracted = current_extract(settings).manifest
    assert extracted.read["incremental"] is True
    assert extracted.watermark == arrived.last_day
    # The second run's features include the day that arrived.
    features = pd.read_parquet(settings.features_dir / MARKET_FEATURES_FILE)
    newest = pd.to_datetime(features["event_timestamp"], utc=True).dt.tz_localize(None).max()
    assert newest.normalize() == pd.Timestamp(arrived.last_day) + pd.Timedelta(days=1)
    # The role really cannot write: the pipeline's success was not a role with more rights.
    reader = sa.create_engine(reader_url)
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), reader.begin() as c:
        c.execute(sa.text("DELETE FROM app_orders"))
    reader.dispose()
    owner.dispose()
