"""The PostgreSQL launcher's kept cluster (Airflow's and MLflow's databases in `make up`)
survives a restart with its data, and a private folder moves it where ``postgres`` can go."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from trademaster.launchers.postgres_server import PostgresServer, reachable_by_others

pytestmark = pytest.mark.integration


def test_a_kept_cluster_keeps_its_databases_across_restarts() -> None:
    parent = Path(tempfile.mkdtemp(prefix="trademaster-kept-"))
    try:
        _restart_keeps_data(parent)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _restart_keeps_data(parent: Path) -> None:
    parent.chmod(0o755)
    data_dir = parent / "postgres"
    with PostgresServer(data_dir=data_dir) as first:
        url = first.create_database("airflow")
        assert first.create_database("airflow") == url  # a second time is a no-op
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE kept (value integer)"))
            connection.execute(sa.text("INSERT INTO kept VALUES (42)"))
        engine.dispose()
    assert (data_dir / "PG_VERSION").is_file()

    with PostgresServer(data_dir=data_dir) as second:
        engine = sa.create_engine(second.database_url("airflow"))
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT value FROM kept")).scalar_one() == 42
        engine.dispose()
    assert data_dir.is_dir()


def test_private_folders_are_detected(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert not reachable_by_others(private / "var")
    assert reachable_by_others(Path("/tmp"))
