"""Champion/challenger promotion, the same for every model.

Each model's rule (its gates, margins and non-comparative checks) lives in its training
module's ``decide``; gates compare on paired bootstrap intervals (``gates``).
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from trademaster.settings import PipelineSettings
from trademaster.training import registry
from trademaster.training.catalog import ModelDefinition

log = logging.getLogger(__name__)


def validate_candidate(
    settings: PipelineSettings, definition: ModelDefinition, candidate: dict[str, Any]
) -> dict[str, Any]:
    """Moves ``champion`` to the candidate if its model's rule accepts it; tags it either way."""
    version = registry.RegisteredVersion(
        definition.name, int(candidate["version"]), str(candidate["run_id"])
    )
    promoted, reason = definition.training_module().decide(candidate["metrics"], settings)
    verdict = "promote" if promoted else "reject"
    log.info("%s v%d: %s", definition.name, version.version, verdict)
    for part in reason.split("; "):
        log.info("  %s", part)
    if promoted:
        registry.promote(settings, version, reason)
    else:
        registry.reject(settings, version, reason)
    current = registry.version_for_alias(settings, definition.name, registry.CHAMPION)
    return {
        "model_name": definition.name,
        "candidate_version": version.version,
        "promoted": promoted,
        "reason": reason,
        "champion_version": current.version if current else None,
    }


def champion_model(settings: PipelineSettings, name: str) -> nn.Module | None:
    """The current champion, to be evaluated on the candidate's held-out rows; None when
    there is none yet."""
    champion = registry.version_for_alias(settings, name, registry.CHAMPION)
    if champion is None:
        return None
    return registry.load_torch_model(settings, champion)
