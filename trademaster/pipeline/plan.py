"""Which models the daily DAG runs and in which order: a light import (names only), so that
Airflow's DAG processor parses ``dags/`` without torch or MLflow. How each model is trained
and exported is ``trademaster.pipeline.catalog``."""

from __future__ import annotations

from trademaster.contract.models import ModelName

MODELS: tuple[ModelName, ...] = tuple(ModelName)
# Their outputs are features of other models: trained, validated and exported before the
# feature build (sentiment scores become the market features' ``sentiment_score``).
FEEDS_FEATURES: frozenset[ModelName] = frozenset({ModelName.SENTIMENT})


def task_suffix(name: str) -> str:
    """``risk-assessment-model`` -> ``risk_assessment_model`` (Airflow task ids)."""
    return name.replace("-", "_")
