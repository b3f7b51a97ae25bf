"""Run a throwaway PostgreSQL cluster on 127.0.0.1 and a free port (tests of the warehouse).

Debian's server binaries live in /usr/lib/postgresql/<major>/bin. PostgreSQL refuses to run
as root, so under root the cluster is created and run as the ``postgres`` system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
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


class PostgresServer(ManagedServer):
    """A throwaway cluster in its own temporary folder (the ``postgres`` user must be able to
    reach it, which a root-only pytest folder does not allow); removed on stop."""

    def __init__(self, port: int | None = None, startup_timeout_s: float = 30.0):
        self.bin_dir = find_postgres_bin()
        self.work_dir = Path(tempfile.mkdtemp(prefix="trademaster-postgres-"))
        self.port = port if port is not None else free_port()
        self.startup_timeout_s = startup_timeout_s
        self.data_dir = self.work_dir / "data"
        self.log_path = self.work_dir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{DATABASE_USER}@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        account = pwd.getpwnam("postgres")
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def start(self) -> PostgresServer:
        as_user = self._run_as()
        if as_user:
            os.chown(self.work_dir, int(str(as_user["user"])), int(str(as_user["group"])))
        initdb = subprocess.run(  # type: ignore[call-overload]
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust",
             "-U", DATABASE_USER, "--no-sync"],
            check=False, capture_output=True, text=True, **as_user,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise ServerStartError(f"initdb failed: {initdb.stderr.strip()}")
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir),
                 "-p", str(self.port), "-k", str(self.work_dir),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
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

    def _accepts_connections(self) -> bool:
        probe = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, grace_s=10)
            self._proc = None
        shutil.rmtree(self.work_dir, ignore_errors=True)
