"""Champion/challenger promotion, the same for every model."""

from __future__ import annotations

from typing import Any

from trademaster.settings import PipelineSettings
from trademaster.training import registry
from trademaster.training.catalog import ModelDefinition


def validate_candidate(
    settings: PipelineSettings, definition: ModelDefinition, candidate: dict[str, Any]
) -> dict[str, Any]:
    """Moves ``champion`` to the candidate if its model's rule accepts it; tags it either way."""
    version = registry.RegisteredVersion(
        definition.name, int(candidate["version"]), str(candidate["run_id"])
    )
    promoted, reason = definition.training_module().decide(candidate["metrics"], settings)
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


def champion_metric(settings: PipelineSettings, name: str, evaluate: Any) -> dict[str, float]:
    """``evaluate(model) -> metrics`` applied to the current champion (same holdout as the
    candidate), prefixed ``champion_``; empty when there is no champion yet."""
    champion = registry.version_for_alias(settings, name, registry.CHAMPION)
    if champion is None:
        return {}
    model = registry.load_torch_model(settings, champion)
    return {f"champion_{key}": value for key, value in evaluate(model).items()}
