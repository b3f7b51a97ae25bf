"""How the pipeline trains, validates and exports each model: imported modules, not names.

Each training module exposes ``train_and_register(settings) -> dict`` (registers a
``challenger`` and returns its metrics, including the champion's on the same holdout as
``champion_*``) and ``decide(metrics, settings) -> (promote, reason)``. Each exporter module
exposes ``export_version(settings, version) -> dict`` writing Triton's repository folders.
Importing this module imports every model's code (torch, MLflow); the DAG file imports the
light ``plan`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from exporters import behavior as behavior_exporter
from exporters import portfolio as portfolio_exporter
from exporters import price_lstm as price_exporter
from exporters import risk as risk_exporter
from exporters import sentiment as sentiment_exporter
from trademaster.behavior import pipeline as behavior_training
from trademaster.contract.models import ModelName
from trademaster.pipeline.plan import MODELS
from trademaster.portfolio import pipeline as portfolio_training
from trademaster.price_lstm import pipeline as price_training
from trademaster.registry import RegisteredVersion
from trademaster.risk import pipeline as risk_training
from trademaster.sentiment import pipeline as sentiment_training
from trademaster.settings import PipelineSettings


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
    name: ModelName
    training: TrainingModule
    exporter: ExporterModule


CATALOG: Mapping[ModelName, ModelDefinition] = {
    ModelName.SENTIMENT: ModelDefinition(
        ModelName.SENTIMENT, sentiment_training, sentiment_exporter
    ),
    ModelName.RISK: ModelDefinition(ModelName.RISK, risk_training, risk_exporter),
    ModelName.BEHAVIOR: ModelDefinition(ModelName.BEHAVIOR, behavior_training, behavior_exporter),
    ModelName.PRICE: ModelDefinition(ModelName.PRICE, price_training, price_exporter),
    ModelName.PORTFOLIO: ModelDefinition(
        ModelName.PORTFOLIO, portfolio_training, portfolio_exporter
    ),
}
assert set(CATALOG) == set(MODELS), "every planned model needs a catalog entry"


def definition(name: str) -> ModelDefinition:
    try:
        return CATALOG[ModelName(name)]
    except ValueError:
        known = ", ".join(model.value for model in MODELS)
        raise KeyError(f"unknown model {name!r}; known: {known}") from None
