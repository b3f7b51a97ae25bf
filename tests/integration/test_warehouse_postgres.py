"""The warehouse on PostgreSQL: only the SQLAlchemy URL changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from trademaster.launchers.postgres_server import PostgresServer
from trademaster.launchers.tools import MissingToolError
from trademaster.pipeline import tasks
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.build import generate_frames, read_table

pytestmark = pytest.mark.integration


def test_extract_and_validate_against_a_real_postgres(tmp_path: Path) -> None:
    try:
        server = PostgresServer()
    except MissingToolError as exc:
        pytest.skip(str(exc))
    with server:
        settings = PipelineSettings(
            data_dir=tmp_path / "var",
            warehouse_url=server.url,
            n_users=100,
            n_trades=3_000,
            n_generated_symbols=6,
            history_business_days=200,
            trade_window_business_days=100,
        )
        summary = tasks.extract(settings)
        counts = tasks.validate_data(settings)
        stored = read_table(settings, schema.trades)
        stored_users = read_table(settings, schema.users)

    frames = generate_frames(settings)
    # ``style`` is the generator's ground truth for tests, not a warehouse column.
    expected = frames.trades.drop(columns="style")
    assert summary["url"].startswith("postgresql+psycopg://")
    assert counts["trades"] == len(expected)
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
