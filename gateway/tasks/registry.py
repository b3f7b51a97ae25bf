"""Task kind (Triton config parameter ``task``) -> adapter."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import InferenceFailed
from gateway.tasks.base import TaskAdapter
from gateway.tasks.forecast import IntervalForecast
from gateway.tasks.portfolio import PortfolioAllocation
from gateway.tasks.sentiment import TextSentiment
from gateway.tasks.tabular import TabularClassifier
from gateway.triton import ServedModel
from trademaster.contract.parameters import TaskKind

ADAPTERS: Mapping[TaskKind, TaskAdapter] = {
    TaskKind.BINARY_CLASSIFICATION: TabularClassifier(multiclass=False),
    TaskKind.MULTICLASS_CLASSIFICATION: TabularClassifier(multiclass=True),
    TaskKind.REGRESSION_INTERVAL: IntervalForecast(),
    TaskKind.TEXT_SENTIMENT: TextSentiment(),
    TaskKind.PORTFOLIO_OPTIMIZATION: PortfolioAllocation(),
}


def adapter_for(model: ServedModel) -> TaskAdapter:
    try:
        return ADAPTERS[model.task]
    except KeyError:
        # Only TaskKind.ENSEMBLE_STEP, which the catalog never resolves.
        raise InferenceFailed(
            f"{model.name} declares task {model.task!r}, which clients cannot call"
        ) from None
