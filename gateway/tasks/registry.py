"""Task name (Triton config parameter ``task``) -> adapter."""

from __future__ import annotations

from gateway.errors import InferenceFailed
from gateway.tasks.base import TaskAdapter
from gateway.tasks.forecast import IntervalForecast
from gateway.tasks.portfolio import PortfolioAllocation
from gateway.tasks.sentiment import TextSentiment
from gateway.tasks.tabular import TabularClassifier
from gateway.triton import ServedModel

ADAPTERS: dict[str, TaskAdapter] = {
    "binary_classification": TabularClassifier(multiclass=False),
    "multiclass_classification": TabularClassifier(multiclass=True),
    "regression_interval": IntervalForecast(),
    "text_sentiment": TextSentiment(),
    "portfolio_optimization": PortfolioAllocation(),
}


def adapter_for(model: ServedModel) -> TaskAdapter:
    try:
        return ADAPTERS[model.task]
    except KeyError:
        raise InferenceFailed(
            f"{model.name} declares task {model.task!r}, which this gateway cannot serve"
        ) from None
