"""Champion/challenger promotion, the same for every model.

Each model's rule (its gates, margins and non-comparative checks) lives in its training
module's ``decide``; gates compare on paired bootstrap intervals (``gates``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from trademaster import registry
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)


def candidate_report(
    version: registry.RegisteredVersion, metrics: Mapping[str, float]
) -> dict[str, Any]:
    """What a training module returns for its new ``challenger`` (``validate_candidate``
    reads it back)."""
    return {
        "model_name": version.name,
        "version": version.version,
        "run_id": version.run_id,
        "metrics": dict(metrics),
    }


Decide = Callable[[Mapping[str, float], PipelineSettings], tuple[bool, str]]


def validate_candidate(
    settings: PipelineSettings, name: str, decide: Decide, candidate: dict[str, Any]
) -> dict[str, Any]:
    """Moves ``champion`` to the candidate if ``decide`` (the model's rule) accepts it; tags
    it either way. A candidate that already is the champion (reused: same data and code) is
    accepted as it is, without deciding or tagging again.

    The report's ``previous_champion_version`` is the champion before this validation, which
    the export step puts back if publishing the new one fails."""
    version = registry.RegisteredVersion(name, int(candidate["version"]), str(candidate["run_id"]))
    previous = registry.version_for_alias(settings, name, registry.CHAMPION)
    previous_version = previous.version if previous else None
    if previous_version == version.version:
        log.info("%s v%d is already the champion: nothing to validate", name, version.version)
        return {
            "model_name": name,
            "candidate_version": version.version,
            "promoted": True,
            "reason": f"v{version.version} is already the champion",
            "champion_version": version.version,
            "previous_champion_version": previous_version,
        }
    promoted, reason = decide(candidate["metrics"], settings)
    verdict = "promote" if promoted else "reject"
    log.info("%s v%d: %s", name, version.version, verdict)
    for part in reason.split("; "):
        log.info("  %s", part)
    if promoted:
        registry.promote(settings, version, reason)
    else:
        registry.reject(settings, version, reason)
    current = registry.version_for_alias(settings, name, registry.CHAMPION)
    return {
        "model_name": name,
        "candidate_version": version.version,
        "promoted": promoted,
        "reason": reason,
        "champion_version": current.version if current else None,
        "previous_champion_version": previous_version,
    }


def champion_model(settings: PipelineSettings, name: str) -> nn.Module | None:
    """The current champion, to be evaluated on the candidate's held-out rows; None when
    there is none yet."""
    champion = registry.version_for_alias(settings, name, registry.CHAMPION)
    if champion is None:
        return None
    return registry.load_torch_model(settings, champion)
