"""The two-phase protocol every task adapter follows, so the service can cache in between.

``prepare`` turns requests into the exact model inputs (one Feast read for all of them) and a
cache key material per request; ``infer`` runs the requests the cache could not answer (one
Triton call per model where shapes allow, split by ``infer_batched`` into calls of at most
the model's ``max_batch_size`` rows) and builds their answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
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
    """One request, ready for the model: its inputs (batch dim 1) and what identifies it.

    The ``logged_*`` fields and ``feature_timestamps`` are what the prediction log records of
    the inputs (plain, bounded values the adapter has at hand anyway); ``request_id`` is set
    by the service when this request's answers are to be logged, and stays None otherwise.
    """

    request: PredictRequest
    inputs: dict[str, np.ndarray]
    key_material: bytes
    stale_views: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # The join keys and their values, or what identifies a request without features.
    logged_entity: dict[str, Any] = field(default_factory=dict)
    # Feature name -> the value fed to the model (after overrides).
    logged_features: dict[str, Any] = field(default_factory=dict)
    # Feature view -> event timestamp of the row read.
    feature_timestamps: dict[str, datetime] = field(default_factory=dict)
    request_id: str | None = None

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


def missing_fields(
    request: PredictRequest, model: ServedModel, *fields: str
) -> InvalidRequest | None:
    """The error for a request that lacks some of ``fields`` (model-specific request fields
    exist on some request variants only), or None."""
    missing = [name for name in fields if getattr(request, name, None) is None]
    if missing:
        return InvalidRequest(f"{model.name} needs {', '.join(missing)} in the request")
    return None


def require(request: PredictRequest, model: ServedModel, *fields: str) -> None:
    error = missing_fields(request, model, *fields)
    if error is not None:
        raise error


def require_plain(request: PredictRequest, model: ServedModel, *fields: str, refusal: str) -> None:
    """``require`` ``fields`` of a model without a feature vector: feature_overrides and
    explain are refused with ``"{model.name} {refusal}"``."""
    require(request, model, *fields)
    if request.feature_overrides or request.explain:
        raise InvalidRequest(f"{model.name} {refusal}")


def split_missing(
    requests: Sequence[PredictRequest], model: ServedModel, *fields: str
) -> tuple[list[Prepared | GatewayError | None], list[int]]:
    """One slot per request, holding the error of a request that lacks some of ``fields``
    (that row fails alone) and None for the caller to fill; and the complete requests'
    indices, in order."""
    slots: list[Prepared | GatewayError | None] = [None] * len(requests)
    complete: list[int] = []
    for index, request in enumerate(requests):
        error = missing_fields(request, model, *fields)
        if error is not None:
            slots[index] = error
        else:
            complete.append(index)
    return slots, complete


def filled(slots: Sequence[Prepared | GatewayError | None]) -> list[Prepared | GatewayError]:
    """The slots of ``split_missing`` once every one has its result."""
    return [item for item in slots if item is not None]


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


async def infer_batched(
    ctx: Context,
    model: ServedModel,
    inputs: Mapping[str, np.ndarray],
    outputs: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """``ctx.triton.infer`` for any number of rows: inputs are split along the batch
    dimension into calls of at most ``model.max_batch_size`` rows and the outputs joined in
    order. A model without batching (``max_batch_size`` 0) takes ``inputs`` whole.

    The calls go one after another: each is a full batch already, and each has its own
    client timeout, which concurrent calls queued behind each other in Triton would spend."""
    size = model.max_batch_size
    rows = len(next(iter(inputs.values())))
    if size <= 0 or rows <= size:
        return await ctx.triton.infer(model, inputs, outputs)
    parts = [
        await ctx.triton.infer(
            model, {name: array[start : start + size] for name, array in inputs.items()}, outputs
        )
        for start in range(0, rows, size)
    ]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
