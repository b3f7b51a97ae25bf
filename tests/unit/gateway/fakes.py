"""Fake dependencies behind the gateway's ``Context`` seam (features, Triton, catalog).

``FakeTriton`` answers like Triton does: it refuses a call with more rows than the model's
``max_batch_size`` (as Triton does: "inference request batch-size must be <= N"), fails the
versions it is told to, and records every call. The catalog is the real ``ModelCatalog``
over ``FakeTriton.repository()``, so routing, hiding and not-ready errors are the gateway's own.
Models are built from Triton-style JSON configs through ``served_model_from_config``, so each
one passes the same contract check as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from pydantic import TypeAdapter

from gateway.cache import PredictionCache
from gateway.catalog import ModelCatalog
from gateway.errors import EntityNotFound, InferenceFailed, InvalidRequest
from gateway.features import FeatureRow, OnlineFeatures
from gateway.prediction_log import PredictionLog
from gateway.rollout import Rollouts
from gateway.schemas import PredictRequest
from gateway.service import PredictionService
from gateway.settings import Rollout
from gateway.tasks.base import Context, Prepared, TaskAdapter
from gateway.triton import RepositoryEntry, ServedModel, TritonGateway, served_model_from_config
from trademaster.contract.models import ModelName

RISK_SERVICE = "risk_model_v1"
BEHAVIOUR_SERVICE = "behavior_model_v1"
PRICE_SERVICE = "price_model_v1"
SENTIMENT_LABELS = ("negative", "neutral", "positive")
BEHAVIOUR_LABELS = ("saver", "trader", "hodler")
# The price model's window: 3 steps of 2 features (log return first).
WINDOW, WINDOW_FEATURES = 3, 2


def config(
    task: str,
    parameters: Mapping[str, str],
    *,
    max_batch_size: int,
    inputs: Sequence[str],
    outputs: Sequence[str],
) -> dict[str, Any]:
    """A model config as Triton's ``get_model_config(as_json=True)`` returns it."""
    body: dict[str, Any] = {
        "input": [{"name": name} for name in inputs],
        "output": [{"name": name} for name in outputs],
        "parameters": {
            key: {"string_value": value} for key, value in {"task": task, **parameters}.items()
        },
    }
    if max_batch_size:  # proto3 JSON leaves zero out
        body["max_batch_size"] = max_batch_size
    return body


def risk_config(max_batch_size: int = 1024) -> dict[str, Any]:
    return config(
        "binary_classification",
        {
            "feature_service": RISK_SERVICE,
            "feature_names": "a,b,c",
            "feature_reference": "0.5,1.5,1",
            "feature_min": "0,0,0",
            "feature_max": "2,4,6",
        },
        max_batch_size=max_batch_size,
        inputs=["features"],
        outputs=["risk_probability"],
    )


def behaviour_config(max_batch_size: int = 1024) -> dict[str, Any]:
    return config(
        "multiclass_classification",
        {
            "feature_service": BEHAVIOUR_SERVICE,
            "feature_names": "a,b",
            "feature_reference": "0,0",
            "feature_min": "-1,-1",
            "feature_max": "1,1",
            "class_labels": ",".join(BEHAVIOUR_LABELS),
        },
        max_batch_size=max_batch_size,
        inputs=["features"],
        outputs=["probabilities"],
    )


def price_config(max_batch_size: int = 256) -> dict[str, Any]:
    return config(
        "regression_interval",
        {
            "feature_service": PRICE_SERVICE,
            "window_feature": "price_window",
            "window": str(WINDOW),
            "features": str(WINDOW_FEATURES),
            "interval": "0.9",
        },
        max_batch_size=max_batch_size,
        inputs=["window"],
        outputs=["forecast"],
    )


def sentiment_config(max_batch_size: int = 128) -> dict[str, Any]:
    return config(
        "text_sentiment",
        {"class_labels": ",".join(SENTIMENT_LABELS)},
        max_batch_size=max_batch_size,
        inputs=["text"],
        outputs=["probabilities", "score"],
    )


def portfolio_config(max_batch_size: int = 64) -> dict[str, Any]:
    """The optimizer taking batches of padded portfolios (``max_batch_size`` 0: one
    unpadded portfolio per call, as versions exported before batching)."""
    batched = max_batch_size > 0
    return config(
        "portfolio_optimization",
        {"default_risk_aversion": "1.0", "default_max_weight": "1.0"},
        max_batch_size=max_batch_size,
        inputs=[
            "expected_returns",
            "covariance",
            *(["holdings"] if batched else []),
            "max_weight",
            "risk_aversion",
        ],
        outputs=["weights", *(["error"] if batched else [])],
    )


def served(name: str, version: int, body: dict[str, Any]) -> ServedModel:
    return served_model_from_config(name, version, body)


def entry(name: str, body: dict[str, Any], versions: Sequence[int] = (1,)) -> RepositoryEntry:
    by_version = {version: served(name, version, body) for version in versions}
    newest = max(versions)
    return RepositoryEntry(name, "READY", tuple(sorted(versions)), by_version[newest], by_version)


# --- Triton ---------------------------------------------------------------------------------

Respond = Callable[[ServedModel, Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Call:
    model: str
    version: int
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...] | None


def linear_risk(weights: Sequence[float], bias: float) -> Respond:
    """A binary classifier whose positive probability is ``features @ weights + bias``."""

    def respond(model: ServedModel, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = inputs["features"].astype(np.float64)
        positive = features @ np.asarray(weights, np.float64) + bias
        return {model.output_names[0]: positive.astype(np.float32).reshape(-1, 1)}

    return respond


def softmax_behaviour(
    model: ServedModel, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Three classes with logits (a, b, a + b)."""
    features = inputs["features"].astype(np.float64)
    logits = np.stack([features[:, 0], features[:, 1], features[:, 0] + features[:, 1]], 1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {"probabilities": (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)}


def price_forecast(model: ServedModel, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Point forecast: the window's mean log return (column 0); interval: point -/+ 0.01."""
    point = inputs["window"][:, :, 0].mean(axis=1)
    return {"forecast": np.stack([point, point - 0.01, point + 0.01], 1).astype(np.float32)}


def sentiment_scores(model: ServedModel, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Texts with "up" are positive, with "down" negative, neutral otherwise."""
    rows = []
    for (text,) in inputs["text"]:
        word = text.decode()
        rows.append(
            [0.1, 0.1, 0.8]
            if "up" in word
            else [0.8, 0.1, 0.1]
            if "down" in word
            else [0.1, 0.8, 0.1]
        )
    probabilities = np.asarray(rows, np.float32)
    score = (probabilities[:, 2] - probabilities[:, 0]).reshape(-1, 1)
    return {"probabilities": probabilities, "score": score}


def equal_weights(model: ServedModel, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """1/h on each row's h real holdings (padding 0); a row with a max_weight below 1/h is
    refused in its ``error``, as the optimizer does."""
    if model.max_batch_size <= 0:
        holdings = len(inputs["expected_returns"])
        return {"weights": np.full(holdings, 1.0 / holdings, np.float32)}
    rows, width = inputs["expected_returns"].shape
    weights = np.zeros((rows, width), np.float32)
    errors = np.full((rows, 1), b"", np.object_)
    caps = inputs.get("max_weight", np.full((rows, 1), np.nan))
    for row, count in enumerate(inputs["holdings"][:, 0]):
        if caps[row, 0] * count < 1:
            errors[row, 0] = f"infeasible: max_weight {caps[row, 0]:.2f} x {count} < 1".encode()
            continue
        weights[row, :count] = 1.0 / count
    return {"weights": weights, "error": errors}


class FakeTriton:
    def __init__(
        self,
        entries: Sequence[RepositoryEntry] = (),
        respond: Mapping[str, Respond] | None = None,
    ) -> None:
        self.entries = list(entries)
        self.respond = dict(respond or {})
        self.calls: list[Call] = []
        self.failing: set[tuple[str, int]] = set()  # (model, version) that Triton cannot serve
        self.refused: dict[str, str] = {}  # model -> INVALID_ARGUMENT message
        self.repository_reads = 0
        # Entries the next repository() returns, e.g. after a promotion.
        self.next_entries: list[RepositoryEntry] | None = None

    def answering(self, model: ServedModel) -> int:
        return 1

    def replica_health(self) -> dict[str, str]:
        return {"fake-triton:8001": "up"}

    def probe_inputs(self, model: ServedModel) -> dict[str, np.ndarray]:
        return {name: np.zeros((1, 1), np.float32) for name in model.input_names}

    async def repository(self) -> list[RepositoryEntry]:
        self.repository_reads += 1
        if self.next_entries is not None:
            self.entries, self.next_entries = self.next_entries, None
        return list(self.entries)

    async def infer(
        self,
        model: ServedModel,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        self.calls.append(
            Call(model.name, model.version, dict(inputs), tuple(outputs) if outputs else None)
        )
        await asyncio.sleep(0)  # a real call yields to the loop
        if (model.name, model.version) in self.failing:
            raise InferenceFailed(
                f"Triton could not serve {model.name} version {model.version}",
                model_name=model.name,
            )
        if model.name in self.refused:
            raise InvalidRequest(f"{model.name}: {self.refused[model.name]}")
        rows = len(next(iter(inputs.values())))
        if model.max_batch_size and rows > model.max_batch_size:
            raise InferenceFailed(
                f"Triton could not serve {model.name} version {model.version}: inference "
                f"request batch-size must be <= {model.max_batch_size}",
                model_name=model.name,
            )
        return self.respond[model.name](model, inputs)

    def calls_to(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.model == name]


# --- Feast ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeLayout:
    join_keys: tuple[str, ...]


@dataclass
class FakeFeatures:
    """Rows by entity (the join keys' values, in order), per feature service."""

    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]]
    join_keys: dict[str, tuple[str, ...]]
    stale: dict[str, tuple[str, ...]] = field(default_factory=dict)  # service -> stale views
    # service -> {view: event timestamp} of every row it returns
    event_timestamps: dict[str, dict[str, datetime]] = field(default_factory=dict)
    reads: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def layout(self, service_name: str) -> FakeLayout:
        return FakeLayout(self.join_keys[service_name])

    def absent_entity(self, service_name: str) -> dict[str, Any]:
        return dict.fromkeys(self.join_keys[service_name], -1)

    async def read(
        self,
        service_name: str,
        entity_rows: Sequence[dict[str, Any]],
        metric_labels: tuple[str, str],
    ) -> list[FeatureRow | EntityNotFound]:
        self.reads.append((service_name, [dict(row) for row in entity_rows]))
        keys = self.join_keys[service_name]
        out: list[FeatureRow | EntityNotFound] = []
        for row in entity_rows:
            entity = tuple(row[key] for key in keys)
            values = self.rows[service_name].get(entity)
            if values is None:
                out.append(EntityNotFound(f"unknown {entity}: no features in {service_name}"))
            else:
                stale = self.stale.get(service_name, ())
                timestamps = dict(self.event_timestamps.get(service_name, {}))
                out.append(FeatureRow(dict(values), stale, timestamps))
        return out


def price_window(returns: Sequence[float]) -> list[float]:
    """A flattened [WINDOW, WINDOW_FEATURES] window whose log-return column is ``returns``."""
    return [value for r in returns for value in (r, 1.0)]


def default_features() -> FakeFeatures:
    return FakeFeatures(
        rows={
            RISK_SERVICE: {
                (1, "AAA"): {"a": 1.0, "b": 2.0, "c": 3.0},
                (2, "AAA"): {"a": 2.0, "b": 0.0, "c": 1.0},
                (3, "BBB"): {"a": 0.0, "b": 4.0, "c": None},  # c has no value
            },
            BEHAVIOUR_SERVICE: {(1,): {"a": 0.5, "b": -0.5}, (2,): {"a": -0.2, "b": 0.9}},
            PRICE_SERVICE: {
                ("AAA",): {"price_window": price_window([0.01, 0.02, 0.03])},
                ("BBB",): {"price_window": price_window([-0.03, 0.0, 0.0])},
                ("CCC",): {"price_window": price_window([0.0, 0.0, 0.06])},
                ("SHORT",): {"price_window": [0.1, 1.0]},  # too few values
            },
        },
        join_keys={
            RISK_SERVICE: ("user_id", "symbol"),
            BEHAVIOUR_SERVICE: ("user_id",),
            PRICE_SERVICE: ("symbol",),
        },
    )


def default_triton(**max_batch: int) -> FakeTriton:
    """Every model at version 1; ``max_batch`` overrides a model's max_batch_size by key
    (risk, behaviour, price, sentiment, portfolio)."""
    return FakeTriton(
        [
            entry(ModelName.RISK, risk_config(max_batch.get("risk", 1024))),
            entry(ModelName.BEHAVIOR, behaviour_config(max_batch.get("behaviour", 1024))),
            entry(ModelName.PRICE, price_config(max_batch.get("price", 256))),
            entry(ModelName.SENTIMENT, sentiment_config(max_batch.get("sentiment", 128))),
            entry(ModelName.PORTFOLIO, portfolio_config(max_batch.get("portfolio", 64))),
        ],
        {
            ModelName.RISK: linear_risk([0.1, 0.05, -0.02], 0.3),
            ModelName.BEHAVIOR: softmax_behaviour,
            ModelName.PRICE: price_forecast,
            ModelName.SENTIMENT: sentiment_scores,
            ModelName.PORTFOLIO: equal_weights,
        },
    )


# --- Catalog, context, service --------------------------------------------------------------


def catalog(triton: FakeTriton) -> ModelCatalog:
    """The real catalog over the fake Triton, refreshed once."""
    models = ModelCatalog(cast(TritonGateway, triton), 60.0, [])
    asyncio.run(models.refresh())
    return models


async def refreshed_catalog(triton: FakeTriton) -> ModelCatalog:
    models = ModelCatalog(cast(TritonGateway, triton), 60.0, [])
    await models.refresh()
    return models


def context(features: FakeFeatures, triton: FakeTriton, models: ModelCatalog) -> Context:
    return Context(cast(OnlineFeatures, features), cast(TritonGateway, triton), models)


@dataclass
class Bench:
    """A task adapter's surroundings: the fakes, a context over them (with the real catalog)
    and the model under test. Results are ``list[Any]`` so tests can index the answers."""

    features: FakeFeatures
    triton: FakeTriton
    ctx: Context
    model: ServedModel

    def prepare(self, adapter: TaskAdapter, requests: Sequence[PredictRequest]) -> list[Any]:
        return asyncio.run(adapter.prepare(self.ctx, self.model, requests))

    def prepare_and_infer(
        self, adapter: TaskAdapter, requests: Sequence[PredictRequest]
    ) -> tuple[list[Any], list[Any]]:
        """What ``prepare`` returned, and the answers of ``infer`` to the requests that
        prepared (none called if none did), as the service calls them."""

        async def scenario() -> tuple[list[Any], list[Any]]:
            prepared = await adapter.prepare(self.ctx, self.model, requests)
            ready = [item for item in prepared if isinstance(item, Prepared)]
            return prepared, (await adapter.infer(self.ctx, self.model, ready) if ready else [])

        return asyncio.run(scenario())

    def answers(self, adapter: TaskAdapter, requests: Sequence[PredictRequest]) -> list[Any]:
        """``infer``'s answers to ``requests``, every one of which must prepare."""
        prepared, answers = self.prepare_and_infer(adapter, requests)
        assert all(isinstance(item, Prepared) for item in prepared), prepared
        return answers


def bench(name: str, **max_batch: int) -> Bench:
    """The bench for model ``name`` over ``default_features()`` and
    ``default_triton(**max_batch)``; change the fakes through it before calling."""
    features, triton = default_features(), default_triton(**max_batch)
    models = catalog(triton)
    return Bench(features, triton, context(features, triton, models), models.resolve(name))


class FakeCache:
    """The prediction cache as a dict."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    async def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        return [self.values.get(key) for key in keys]

    async def set_many(self, values: dict[str, dict[str, Any]]) -> None:
        self.values.update(values)

    def record_ratio(self, model_name: str, version: str, hits: int, lookups: int) -> None:
        pass


class FakeRedis:
    """The two hash commands ``Rollouts`` uses."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}

    async def hset(self, key: str, field_name: str, value: str) -> int:
        self.hashes.setdefault(key, {})[field_name] = value
        return 1

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        stored = self.hashes.get(key, {})
        return {name.encode(): value.encode() for name, value in stored.items()}


def rollouts(configured: Mapping[str, Rollout] | None = None) -> Rollouts:
    return Rollouts(dict(configured or {}), cast(Any, FakeRedis()))


async def service(
    features: FakeFeatures,
    triton: FakeTriton,
    configured: Mapping[str, Rollout] | None = None,
    prediction_log: PredictionLog | None = None,
    coalesce_batches: int = 0,
) -> tuple[PredictionService, FakeCache]:
    models = await refreshed_catalog(triton)
    cache = FakeCache()
    predictions = PredictionService(
        context(features, triton, models),
        cast(PredictionCache, cache),
        rollouts(configured),
        prediction_log,
        coalesce_batches=coalesce_batches,
    )
    return predictions, cache


# --- Requests -------------------------------------------------------------------------------

_REQUEST: TypeAdapter[PredictRequest] = TypeAdapter(PredictRequest)


def request(**fields: Any) -> PredictRequest:
    """A request as the API validates it (works for a class or a union of request models)."""
    return _REQUEST.validate_python(fields)


def unchecked_request(model_name: str, **fields: Any) -> PredictRequest:
    """A request of ``model_name`` as the schema would never let through (a batch row without
    its join key, an explanation asked of a sequence model): the adapters must refuse it
    themselves. They read model-specific fields with ``getattr``, so a namespace does."""
    body: dict[str, Any] = {"explain": False, "feature_overrides": {}, **fields}
    return cast(PredictRequest, SimpleNamespace(model_name=model_name, **body))
