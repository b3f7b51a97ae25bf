"""Admin: traffic splits per model (canary weight, shadow), admin-scoped API keys only."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import AdminKey, CatalogDep, RolloutsDep
from gateway.errors import error_responses
from gateway.schemas import RolloutUpdate
from gateway.settings import Rollout
from trademaster.contract.models import ModelName

router = APIRouter(prefix="/admin", tags=["admin"])

AUTH = {
    401: "Missing or unknown API key (unauthorized)",
    403: "API key without the admin scope (forbidden)",
}


@router.get("/rollouts", response_model=dict[str, Rollout], responses=error_responses(AUTH))
async def list_rollouts(rollouts: RolloutsDep, _: AdminKey) -> dict[str, Rollout]:
    return rollouts.all()


@router.put(
    "/rollouts/{model_name}",
    response_model=Rollout,
    responses=error_responses(
        {
            **AUTH,
            404: "Unknown model (model_not_found)",
            409: "A version that is not loaded in Triton (version_not_loaded)",
            413: "Request body too large (payload_too_large)",
            422: "Invalid body: unknown field, canary_weight without canary_version "
            "(invalid_request)",
            503: "Model not loaded, not deployed, or Triton unreachable",
        }
    ),
)
async def set_rollout(
    model_name: ModelName,
    body: RolloutUpdate,
    rollouts: RolloutsDep,
    catalog: CatalogDep,
    _: AdminKey,
) -> Rollout:
    """Sets primary/canary/shadow versions of a model; the fields left out are cleared.
    Takes effect for the next request; requests in flight finish on the version they started
    with."""
    entry = catalog.entry(model_name)
    rollout = Rollout.model_validate(body.model_dump())
    await rollouts.set(model_name, rollout, entry)
    return rollouts.get(model_name)
