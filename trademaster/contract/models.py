"""The names of the models the platform serves (the catalog's, the gateway's, the API's)."""

from __future__ import annotations

from enum import StrEnum


class ModelName(StrEnum):
    SENTIMENT = "sentiment-analyzer"
    RISK = "risk-assessment-model"
    BEHAVIOR = "behavioral-pattern-classifier"
    PRICE = "price-prediction-lstm"
    PORTFOLIO = "portfolio-optimizer"
