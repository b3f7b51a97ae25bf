"""A Spark master that cannot work fails at once with what to do (no session is started)."""

from __future__ import annotations

import pytest

from trademaster.features.spark import SparkUnavailable, check_spark
from trademaster.launchers.process import free_port


def test_an_unreachable_standalone_master_is_refused_at_once() -> None:
    master = f"spark://127.0.0.1:{free_port()}"

    with pytest.raises(SparkUnavailable, match=r"not reachable.*unset it"):
        check_spark(master, timeout_s=1.0)


def test_without_java_the_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)

    with pytest.raises(SparkUnavailable, match="openjdk-17-jre-headless"):
        check_spark("local[2]")


def test_local_mode_with_java_passes() -> None:
    check_spark("local[2]")
