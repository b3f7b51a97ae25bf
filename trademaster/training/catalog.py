"""The models the pipeline trains, validates and exports, and the modules that know how.

Each training module exposes ``train_and_register(settings) -> dict`` (registers a
``challenger`` and returns its metrics, including the champion's on the same holdout as
``champion_*``) and ``decide(metrics, settings) -> (promote, reason)``. Each exporter module
exposes ``export_version(settings, version) -> dict`` writing Triton's repository folders.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from trademaster.settings import PipelineSettings

if TYPE_CHECKING:
    from trademaster.training.registry import RegisteredVersion


class TrainingModule(Protocol):
    def train_and_register(self, settings: PipelineSettings) -> dict[str, Any]: ...

    def decide(
        self, metrics: Mapping[str, float], settings: PipelineSettings
    ) -> tuple[bool, str]: ...


class ExporterModule(Protocol):
    def export_version(
        self, settings: PipelineSettings, version: RegisteredVersion
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ModelDefinition:
    name: str
    training: str
    exporter: str
    # Trains before feature engineering (its outputs are features of other models).
    before_features: bool = False

    @property
    def task_suffix(self) -> str:
        return self.name.replace("-", "_")

    def training_module(self) -> TrainingModule:
        return cast(TrainingModule, importlib.import_module(self.training))

    def exporter_module(self) -> ExporterModule:
        return cast(ExporterModule, importlib.import_module(self.exporter))


MODELS: tuple[ModelDefinition, ...] = (
    ModelDefinition(
        "sentiment-analyzer",
        "trademaster.training.sentiment_pipeline",
        "exporters.sentiment",
        before_features=True,
    ),
    ModelDefinition(
        "risk-assessment-model",
        "trademaster.training.risk_pipeline",
        "exporters.risk_model",
    ),
    ModelDefinition(
        "behavioral-pattern-classifier",
        "trademaster.training.behavior_pipeline",
        "exporters.behavior_model",
    ),
    ModelDefinition(
        "price-prediction-lstm",
        "trademaster.training.price_pipeline",
        "exporters.price_lstm",
    ),
    ModelDefinition(
        "portfolio-optimizer",
        "trademaster.training.portfolio_pipeline",
        "exporters.portfolio",
    ),
)

MODEL_BY_NAME = {definition.name: definition for definition in MODELS}


def definition(name: str) -> ModelDefinition:
    try:
        return MODEL_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_BY_NAME)}") from None
