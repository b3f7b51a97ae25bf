"""Admin: traffic splits per model (canary weight, shadow), admin-scoped API keys only."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import AdminKey, CatalogDep, RolloutsDep
from gateway.schemas import ErrorResponse
from gateway.settings import Rollout

router = APIRouter(prefix="/admin", tags=["admin"])

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse, "description": "Version not loaded in Triton"},
}


@router.get("/rollouts", response_model=dict[str, Rollout], responses=ERRORS)
async def list_rollouts(rollouts: RolloutsDep, _: AdminKey) -> dict[str, Rollout]:
    return rollouts.all()


@router.put("/rollouts/{model_name}", response_model=Rollout, responses=ERRORS)
async def set_rollout(
    model_name: str, body: Rollout, rollouts: RolloutsDep, catalog: CatalogDep, _: AdminKey
) -> Rollout:
    """Sets primary/canary/shadow versions of a model. Takes effect for the next request;
    requests in flight finish on the version they started with."""
    await rollouts.set(model_name, body, catalog.entry(model_name))
    return rollouts.get(model_name)
