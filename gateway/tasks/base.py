"""The two-phase protocol every task adapter follows, so the service can cache in between.

``prepare`` turns requests into the exact model inputs (one Feast read for all of them) and a
cache key material per request; ``infer`` runs the requests the cache could not answer (one
Triton call per model where shapes allow) and builds their answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson

from gateway.errors import GatewayError, InvalidRequest

if TYPE_CHECKING:
    from gateway.catalog import ModelCatalog
    from gateway.features import OnlineFeatures
    from gateway.schemas import PredictRequest
    from gateway.triton import ServedModel, TritonGateway


@dataclass(frozen=True)
class Context:
    features: OnlineFeatures
    triton: TritonGateway
    catalog: ModelCatalog


@dataclass
class Prepared:
    """One request, ready for the model: its inputs (batch dim 1) and what identifies it."""

    request: PredictRequest
    inputs: dict[str, np.ndarray]
    key_material: bytes
    stale_views: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def cache_digest(self) -> str:
        return hashlib.blake2b(self.key_material, digest_size=16).hexdigest()


Answer = dict[str, Any]


class TaskAdapter(Protocol):
    def validate(self, model: ServedModel, request: PredictRequest) -> None:
        """Raise ``InvalidRequest`` (422) naming what the request lacks for this model."""

    async def prepare(
        self, ctx: Context, model: ServedModel, requests: Sequence[PredictRequest]
    ) -> list[Prepared | GatewayError]: ...

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]: ...


def require(request: PredictRequest, model: ServedModel, *fields: str) -> None:
    missing = [name for name in fields if getattr(request, name) is None]
    if missing:
        raise InvalidRequest(f"{model.name} needs {', '.join(missing)} in the request")


def key_material(*parts: Any) -> bytes:
    """Deterministic bytes for cache keys (numpy arrays by value, dicts sorted)."""
    chunks = []
    for part in parts:
        if isinstance(part, np.ndarray):
            chunks.append(part.dtype.str.encode() + str(part.shape).encode() + part.tobytes())
        else:
            chunks.append(
                orjson.dumps(part, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
            )
    return b"\x1f".join(chunks)


def stack_inputs(prepared: Sequence[Prepared]) -> dict[str, np.ndarray]:
    names = prepared[0].inputs.keys()
    return {name: np.concatenate([item.inputs[name] for item in prepared]) for name in names}
