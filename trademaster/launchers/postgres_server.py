"""Run a PostgreSQL cluster on 127.0.0.1: throwaway (tests of the warehouse) or kept in a data
folder across starts (the metadata databases of `make up`: Airflow's and MLflow's).

Debian's server binaries live in /usr/lib/postgresql/<major>/bin. PostgreSQL refuses to run
as root, so under root the cluster is created and run as the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from trademaster.launchers.process import (
    ManagedServer,
    ServerStartError,
    free_port,
    stop_process,
    wait_until,
)
from trademaster.launchers.tools import MissingToolError

DATABASE_USER = "trademaster"


def find_postgres_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if not candidates:
        raise MissingToolError(
            "PostgreSQL server binaries are missing: apt-get install postgresql (or make bootstrap)"
        )
    return candidates[0].parent


def reachable_by_others(folder: Path) -> bool:
    """Whether another user (``postgres``) can reach ``folder``: it and every folder above it
    that exists are searchable by others."""
    for part in [folder, *folder.parents]:
        if part.exists() and not part.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def outside_private_folders(data_dir: Path) -> Path:
    """Where a kept cluster goes when ``data_dir`` lies below a folder the ``postgres`` user
    cannot enter (a private home, say): one folder per project under /var/lib/trademaster."""
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    moved = Path("/var/lib/trademaster") / f"postgres-{digest}"
    moved.parent.mkdir(parents=True, exist_ok=True)
    moved.parent.chmod(0o755)
    print(f"[postgres] {data_dir.parent} is private to its owner: the cluster lives in {moved}")
    return moved


class PostgresServer(ManagedServer):
    """Without ``data_dir``, a throwaway cluster in its own temporary folder (the ``postgres``
    user must be able to reach it, which a root-only pytest folder does not allow), removed on
    stop. With ``data_dir``, the cluster lives there and is kept: created on the first start,
    reused on the next ones. The socket and the log always go to a temporary folder."""

    program = "postgres"

    def __init__(
        self,
        port: int | None = None,
        startup_timeout_s: float = 30.0,
        data_dir: Path | None = None,
    ):
        self.bin_dir = find_postgres_bin()
        self.work_dir = Path(tempfile.mkdtemp(prefix="trademaster-postgres-"))
        self.port = port if port is not None else free_port()
        self.startup_timeout_s = startup_timeout_s
        self.persistent = data_dir is not None
        self.data_dir = data_dir.resolve() if data_dir is not None else self.work_dir / "data"
        self.log_path = self.work_dir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        return f"postgresql+psycopg://{DATABASE_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        """Creates ``database`` unless it exists; returns its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=DATABASE_USER, dbname="postgres",
            autocommit=True,
        ) as connection:  # fmt: skip
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if exists is None:
                connection.execute(f'CREATE DATABASE "{database}"')
        return self.database_url(database)

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        account = pwd.getpwnam("postgres")
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def start(self) -> PostgresServer:
        as_user = self._run_as()
        if as_user:
            owner = int(str(as_user["user"])), int(str(as_user["group"]))
            os.chown(self.work_dir, *owner)
            if self.persistent and not reachable_by_others(self.data_dir.parent):
                self.data_dir = outside_private_folders(self.data_dir)
            if self.persistent:
                self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chown(self.data_dir, *owner)
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb(as_user)
        # A throwaway cluster need not survive a crash; a kept one must.
        durability = [] if self.persistent else ["-c", "fsync=off"]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir),
                 "-p", str(self.port), "-k", str(self.work_dir),
                 "-c", "listen_addresses=127.0.0.1", *durability],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **as_user,
            )  # fmt: skip
        wait_until(
            self._accepts_connections,
            self.startup_timeout_s,
            f"postgres on port {self.port}",
            proc=self._proc,
            log_path=self.log_path,
        )
        return self

    def _initdb(self, as_user: dict[str, object]) -> None:
        initdb = subprocess.run(  # type: ignore[call-overload]
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust",
             "-U", DATABASE_USER, "--no-sync"],
            check=False, capture_output=True, text=True, **as_user,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise ServerStartError(f"initdb failed in {self.data_dir}: {initdb.stderr.strip()}")

    def _accepts_connections(self) -> bool:
        probe = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def stop(self) -> None:
        if self._proc is not None:
            # SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to leave):
            # open transactions roll back and the data folder is left clean.
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=30)
            stop_process(self._proc, grace_s=10)
            self._proc = None
        shutil.rmtree(self.work_dir, ignore_errors=True)
