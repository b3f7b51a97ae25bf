"""GET /models: what Triton serves and what each model reads from Feast."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import CatalogDep
from gateway.schemas import ModelStatus

router = APIRouter(tags=["models"])


@router.get("/models", response_model=list[ModelStatus])
async def list_models(catalog: CatalogDep) -> list[ModelStatus]:
    """Models Triton knows, then catalog models never deployed (state NOT_DEPLOYED, with
    the reason)."""
    served = [
        ModelStatus(
            name=entry.name,
            ready=entry.served is not None,
            state=entry.state,
            version=entry.served.version if entry.served else None,
            versions=list(entry.versions),
            task=entry.served.task if entry.served else None,
            feature_service=entry.served.feature_service if entry.served else None,
            features=list(entry.served.feature_names) if entry.served else [],
        )
        for entry in catalog.entries()
    ]
    not_deployed = [
        ModelStatus(
            name=name,
            ready=False,
            state="NOT_DEPLOYED",
            version=None,
            versions=[],
            task=None,
            feature_service=None,
            features=[],
            reason=reason,
        )
        for name, reason in catalog.not_deployed().items()
    ]
    return served + not_deployed
