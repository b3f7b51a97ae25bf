"""Request and response bodies of the gateway's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9.]{1,16}$")]
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]

MAX_TEXT_CHARS = 1_000
MAX_PORTFOLIO_SYMBOLS = 50


class PredictRequest(BaseModel):
    """One prediction. Which fields are required depends on the model:

    - risk-assessment-model: ``user_id`` and ``symbol``
    - behavioral-pattern-classifier: ``user_id``
    - price-prediction-lstm: ``symbol``
    - sentiment-analyzer: ``text``
    - portfolio-optimizer: ``symbols`` (the holdings), optional ``max_weight``, ``risk_aversion``
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model_name": "risk-assessment-model", "user_id": 42, "symbol": "SYN007"},
                {"model_name": "sentiment-analyzer", "text": "Acme beats estimates"},
                {"model_name": "portfolio-optimizer", "symbols": ["SYN001", "SYN002"]},
            ]
        },
    )

    model_name: ModelName = "risk-assessment-model"
    user_id: int | None = Field(default=None, ge=1, le=2**53, description="TradeMaster user id")
    symbol: Symbol | None = Field(default=None, description="e.g. SYN007 (generated) or GOOG")
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    symbols: list[Symbol] | None = Field(
        default=None, min_length=2, max_length=MAX_PORTFOLIO_SYMBOLS, description="Holdings"
    )
    max_weight: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    risk_aversion: float | None = Field(default=None, gt=0, le=1_000, allow_inf_nan=False)
    feature_overrides: dict[FeatureName, FiniteFloat] = Field(
        default_factory=dict,
        max_length=64,
        description="Replace online feature values by name (what-if); finite and within the "
        "range the model was trained on",
    )
    explain: bool = Field(default=False, description="Add feature_importance (tabular models)")

    @field_validator("text")
    @classmethod
    def _encodable(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError("text is not valid Unicode (lone surrogate?)") from exc
            if not text.strip():
                raise ValueError("text is blank")
        return text

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, symbols: list[str] | None) -> list[str] | None:
        if symbols is not None and len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be distinct")
        return symbols


class Interval(BaseModel):
    level: float = Field(description="Nominal coverage, e.g. 0.9")
    lower: float
    upper: float


class PredictResponse(BaseModel):
    model_name: str
    model_version: int
    prediction: float | str | dict[str, float] = Field(
        description="risk: loss probability; behaviour: archetype; price: next log return; "
        "sentiment: score in [-1, 1]; portfolio: weights by symbol"
    )
    confidence: float | Interval = Field(
        description="Classifiers: probability of the predicted class. Regressions: split "
        "conformal interval"
    )
    probabilities: dict[str, float] | None = None
    feature_importance: dict[str, float] | None = Field(
        default=None, description="Change of the output when a feature is set to its median"
    )
    timestamp: datetime
    feature_service: str | None
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
    versions: list[int]
    task: str | None
    feature_service: str | None
    features: list[str]
    reason: str | None = Field(
        default=None, description="Why a catalog model is not deployed (state NOT_DEPLOYED)"
    )


class ReadyStatus(BaseModel):
    ready: bool
    triton: bool
    models: dict[str, bool] = Field(description="Deployed models: loaded in Triton or not")
    not_deployed: dict[str, str] = Field(
        default_factory=dict,
        description="Catalog models never deployed (no champion yet), with the reason; they do "
        "not make the gateway unready, their requests get 503 model_not_ready",
    )
    cache: bool


class BatchPredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[PredictRequest] = Field(
        min_length=1, description="At most GATEWAY_MAX_BATCH_ROWS (default 1000) rows; more: 413"
    )


class BatchRowResult(PredictResponse):
    ok: bool = True


class BatchRowError(BaseModel):
    ok: bool = False
    error: str
    detail: str


class BatchPredictResponse(BaseModel):
    results: list[BatchRowResult | BatchRowError] = Field(description="In request order")
    errors: int
