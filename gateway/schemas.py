"""Request and response bodies of the gateway's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9.]{1,16}$")]


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"user_id": 42, "symbol": "SYN007", "model_name": "risk-assessment-model"}]
        },
    )

    user_id: int = Field(ge=1, le=2**53, description="TradeMaster user id")
    symbol: Symbol = Field(description="Instrument, e.g. SYN007 (generated) or GOOG (real)")
    model_name: ModelName = "risk-assessment-model"
    feature_overrides: dict[str, FiniteFloat] = Field(
        default_factory=dict,
        max_length=64,
        description="Replace online feature values by name (what-if analysis); finite numbers",
    )


class PredictResponse(BaseModel):
    model_name: str
    model_version: int
    prediction: float = Field(description="risk-assessment-model: probability of a large loss")
    confidence: float = Field(description="Probability of the predicted class")
    timestamp: datetime
    feature_service: str
    cached: bool
    stale_features: list[str] = Field(
        default_factory=list, description="Feature views whose values are older than their ttl"
    )


class ErrorResponse(BaseModel):
    error: str = Field(description="Stable machine-readable code")
    detail: str


class ModelStatus(BaseModel):
    name: str
    ready: bool
    state: str
    version: int | None
    feature_service: str | None
    features: list[str]


class ReadyStatus(BaseModel):
    ready: bool
    triton: bool
    models: dict[str, bool]
    cache: bool
