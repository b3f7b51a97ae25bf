"""Suite-wide options: ``--fail-on-skip`` turns any skipped test into a failed session.

``make test`` passes it, so CI cannot go green while a test skipped itself (for example
because a server binary is missing); the skip reasons are printed in the summary (-ra).
"""

from __future__ import annotations

import shutil

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fail-on-skip",
        action="store_true",
        help="fail the session if any test is skipped",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--fail-on-skip"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped:
        reporter.write_line(
            f"--fail-on-skip: {len(skipped)} test(s) skipped; every test must run here",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def installed(tool: str, package: str) -> str:
    """The path of ``tool``; skips (a failure under --fail-on-skip) naming its package."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package {package}; make bootstrap)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return installed("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return installed("amtool", "prometheus-alertmanager")
