"""Suite-wide options: ``--fail-on-skip`` turns any skipped test into a failed session.

``make test`` passes it, so CI cannot go green while a test skipped itself (for example
because a server binary is missing); the skip reasons are printed in the summary (-ra).
"""

from __future__ import annotations

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
