"""GET /models: what Triton serves and what each model reads from Feast."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import CatalogDep
from gateway.schemas import ModelStatus

router = APIRouter(tags=["models"])


@router.get("/models", response_model=list[ModelStatus])
async def list_models(catalog: CatalogDep) -> list[ModelStatus]:
    return [
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
