"""The pipeline's warehouse access cannot write, and says what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.read import WarehouseNotReady, read_only_engine, table_counts


def _settings(tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(data_dir=tmp_path, warehouse_url=f"sqlite:///{tmp_path / 'w.db'}")


def test_a_missing_warehouse_is_not_created_and_the_error_says_how_to_seed(
    tmp_path: Path,
) -> None:
    with pytest.raises(WarehouseNotReady, match="cannot read the warehouse"):
        table_counts(_settings(tmp_path))
    assert not (tmp_path / "w.db").exists()


def test_missing_and_empty_tables_are_named(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = sa.create_engine(settings.resolved_warehouse_url)
    schema.users.create(engine)
    with pytest.raises(WarehouseNotReady, match=r"no table symbols, market_data, trades"):
        table_counts(settings)
    schema.metadata.create_all(engine)
    engine.dispose()
    with pytest.raises(WarehouseNotReady, match=r"no rows in .*users.*trademaster warehouse seed"):
        table_counts(settings)


def test_the_read_only_engine_refuses_writes_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    writer = sa.create_engine(url)
    with writer.begin() as connection:
        connection.execute(sa.text("CREATE TABLE app_orders (id INTEGER PRIMARY KEY)"))
        connection.execute(sa.text("INSERT INTO app_orders VALUES (1)"))
    writer.dispose()

    reader = read_only_engine(url)
    with reader.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM app_orders")).scalar_one() == 1
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            connection.execute(sa.text("DELETE FROM app_orders"))
    reader.dispose()
