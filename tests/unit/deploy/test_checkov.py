"""checkov on every rendered overlay of ``k8s/``: no failed check, and every skipped one is
skipped on its object with a reason (a ``checkov.io/skipN: CHECK=reason`` annotation).

checkov runs from its own virtualenv (``.venv-checkov``, made by ``make bootstrap`` from
requirements/checkov.lock), offline (``--skip-download``), on what ``kubectl kustomize`` renders:
the objects a cluster would get, patches and generated ConfigMaps included.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.test_k8s import KUSTOMIZATIONS, rendered
from trademaster.settings import PROJECT_ROOT

CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"
# Offline, one compact JSON report with passed, failed and skipped checks.
CHECKOV_ARGS = ("--framework", "kubernetes", "--skip-download", "--compact", "--output", "json")


def _scan(overlay: str, tmp_path: Path) -> dict[str, Any]:
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: run make bootstrap"
    manifests = tmp_path / f"{overlay}.yaml"
    manifests.write_text(rendered(overlay))
    result = subprocess.run(
        [str(CHECKOV), "--file", str(manifests), *CHECKOV_ARGS],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    # Exit status 1 means failed checks: the report says which.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("overlay", sorted(KUSTOMIZATIONS))
def test_checkov_finds_nothing_and_every_skip_gives_its_reason(
    overlay: str, tmp_path: Path
) -> None:
    report = _scan(overlay, tmp_path)
    results = report.get("results", {})
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in results.get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] > 500, report["summary"]  # it really scanned
    skipped = results.get("skipped_checks", [])
    assert skipped, "the annotated skips were not seen: is the report complete?"
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.split()) >= 5, f"{check['check_id']} {check['resource']}: {reason!r}"
