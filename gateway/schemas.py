"""Request and response bodies of the gateway's HTTP API.

A prediction request is one of five bodies, chosen by ``model_name`` (a missing
``model_name`` means risk-assessment-model, as it always did). Each body holds that model's
own fields, required where the model needs them, and refuses any other field: the OpenAPI
schema generated from these classes is the contract clients build against.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StringConstraints,
    Tag,
    TypeAdapter,
    field_validator,
)

from trademaster.contract.models import ModelName


def _integral(value: Any) -> Any:
    """JSON Schema's integer includes 3.0: take it as 3 (a strict int refuses any float)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# What JSON Schema calls an integer: 3 or 3.0, never "3" or true (the bounds go inside).
UserId = Annotated[
    int,
    Strict(),
    Field(ge=1, le=2**53),
    BeforeValidator(_integral),
    Field(description="TradeMaster user id"),
]
Version = Annotated[int, Strict(), Field(ge=1), BeforeValidator(_integral)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Symbol = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z0-9.]{1,16}$"),
    Field(description="e.g. SYN007 (generated) or GOOG"),
]
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]

MAX_TEXT_CHARS = 1_000
MAX_PORTFOLIO_SYMBOLS = 50
MAX_FEATURE_OVERRIDES = 64
# What "blank" means for a text, the same in the schema (a pattern) and in validation.
WHITESPACE = " \t\n\r\f\v"
NOT_BLANK = r"[^ \t\n\r\f\v]"
DEFAULT_MODEL: Final = ModelName.RISK
# The error type of a body that is not one of the prediction requests.
PREDICT_BODY_ERROR = "predict_body"


class _RequestBody(BaseModel):
    # Strict: a field is of its schema's type (no "1" for 1, no 0 for false), and no other
    # field is accepted.
    model_config = ConfigDict(extra="forbid", strict=True)


class _TabularRequest(_RequestBody):
    """A model reading a feature vector from Feast: overrides and explanations apply."""

    user_id: UserId
    feature_overrides: dict[FeatureName, FiniteFloat] = Field(
        default_factory=dict,
        max_length=MAX_FEATURE_OVERRIDES,
        description="Replace online feature values by name (what-if); finite and within the "
        "range the model was trained on. The served schema (/openapi.json) lists the names "
        "and ranges of the version being served",
        json_schema_extra={"additionalProperties": False},
    )
    explain: bool = Field(default=False, description="Add feature_importance")


class _UnexplainedRequest(_RequestBody):
    """A model without a feature vector: no overrides, no explanations (the service reads
    both attributes of every request)."""

    feature_overrides: ClassVar[Mapping[str, float]] = MappingProxyType({})
    explain: ClassVar[bool] = False


class RiskRequest(_TabularRequest):
    """risk-assessment-model: the probability that the user's next position on ``symbol``
    loses money. The default model when ``model_name`` is omitted."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model_name": ModelName.RISK.value, "user_id": 42, "symbol": "SYN007"}]
        }
    )

    model_name: Literal[ModelName.RISK] = DEFAULT_MODEL
    symbol: Symbol


class BehaviorRequest(_TabularRequest):
    """behavioral-pattern-classifier: the user's trading archetype."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model_name": ModelName.BEHAVIOR.value, "user_id": 42}]}
    )

    model_name: Literal[ModelName.BEHAVIOR]


class PriceRequest(_UnexplainedRequest):
    """price-prediction-lstm: the next-period log return of ``symbol``, with its interval."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model_name": ModelName.PRICE.value, "symbol": "SYN001"}]}
    )

    model_name: Literal[ModelName.PRICE]
    symbol: Symbol


class SentimentRequest(_UnexplainedRequest):
    """sentiment-analyzer: a score in [-1, 1] of a headline or short text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model_name": ModelName.SENTIMENT.value, "text": "Acme beats estimates"}]
        }
    )

    model_name: Literal[ModelName.SENTIMENT]
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description="Not blank: at least one character other than space, tab or line breaks",
        json_schema_extra={"pattern": NOT_BLANK},
    )

    @field_validator("text")
    @classmethod
    def _encodable(cls, text: str) -> str:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text is not valid Unicode (lone surrogate?)") from exc
        if not text.strip(WHITESPACE):
            raise ValueError("text is blank")
        return text


class PortfolioRequest(_UnexplainedRequest):
    """portfolio-optimizer: long-only weights of the holdings, fully invested."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": ModelName.PORTFOLIO.value,
                    "symbols": ["SYN001", "SYN002", "SYN003"],
                    "max_weight": 0.5,
                }
            ]
        }
    )

    model_name: Literal[ModelName.PORTFOLIO]
    symbols: list[Symbol] = Field(
        min_length=2,
        max_length=MAX_PORTFOLIO_SYMBOLS,
        description="The holdings, distinct",
        json_schema_extra={"uniqueItems": True},
    )
    max_weight: float | None = Field(
        default=None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Cap on each weight; at least 1/len(symbols), or the holdings cannot be "
        "fully invested (422)",
    )
    # The optimizer takes float32: a smaller value would reach it as 0.
    risk_aversion: float | None = Field(default=None, ge=1e-6, le=1_000, allow_inf_nan=False)

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, symbols: list[str]) -> list[str]:
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be distinct")
        return symbols


def _model_of(body: Any) -> Any:
    """The union's tag: ``model_name``, or the default model when a body omits it."""
    if isinstance(body, dict):
        return body.get("model_name", DEFAULT_MODEL)
    return getattr(body, "model_name", None)


PredictRequest = Annotated[
    Annotated[RiskRequest, Tag(ModelName.RISK)]
    | Annotated[BehaviorRequest, Tag(ModelName.BEHAVIOR)]
    | Annotated[PriceRequest, Tag(ModelName.PRICE)]
    | Annotated[SentimentRequest, Tag(ModelName.SENTIMENT)]
    | Annotated[PortfolioRequest, Tag(ModelName.PORTFOLIO)],
    Discriminator(
        _model_of,
        custom_error_type=PREDICT_BODY_ERROR,
        custom_error_message="Input should be a JSON object whose model_name (default "
        f"{DEFAULT_MODEL}) is one of: {', '.join(ModelName)}",
    ),
    Field(description="One prediction; model_name (default risk-assessment-model) says which"),
]
PREDICT_REQUEST: TypeAdapter[PredictRequest] = TypeAdapter(PredictRequest)


def predict_request(**fields: Any) -> PredictRequest:
    """A validated prediction request from its fields (the body as a client sends it)."""
    return PREDICT_REQUEST.validate_python(fields)


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


class Problem(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. rows.3.user_id")
    message: str


class ErrorResponse(BaseModel):
    """Every error answer of the gateway."""

    error: str = Field(description="Stable machine-readable code")
    detail: str
    problems: list[Problem] | None = Field(
        default=None, description="Invalid requests (invalid_request): each offending field"
    )
    model_name: str | None = Field(
        default=None, description="The model concerned, when the error is about one"
    )


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
    triton_replicas: dict[str, str] = Field(
        default_factory=dict,
        description='Each Triton replica the gateway calls: "up", or "out: <why>" (ejected '
        "after failing or unreachable; it is taken back when it answers again)",
    )


class BatchPredictRequest(_RequestBody):
    rows: list[PredictRequest] = Field(
        min_length=1, description="At most GATEWAY_MAX_BATCH_ROWS (default 1000) rows; more: 413"
    )


class BatchRowResult(PredictResponse):
    ok: Literal[True] = True


class BatchRowError(BaseModel):
    ok: Literal[False] = False
    error: str
    detail: str


class BatchPredictResponse(BaseModel):
    results: list[BatchRowResult | BatchRowError] = Field(description="In request order")
    errors: int


class _RolloutUpdate(_RequestBody):
    primary_version: Version | None = Field(default=None, description="None: newest ready")
    shadow_version: Version | None = Field(
        default=None, description="Also called in the background; its answers are only compared"
    )


class SteadyRollout(_RolloutUpdate):
    """No canary: every request goes to the primary version."""

    canary_version: None = None
    canary_weight: float = Field(
        default=0.0,
        ge=0.0,
        description="0 without a canary_version",
        json_schema_extra={"maximum": 0.0},
    )

    @field_validator("canary_weight")
    @classmethod
    def _no_weight_without_canary(cls, weight: float) -> float:
        if weight > 0:
            raise ValueError("canary_weight above 0 needs a canary_version")
        return weight


class CanaryRollout(_RolloutUpdate):
    """A share of the users (sticky per user) goes to the canary version."""

    canary_version: Version
    canary_weight: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)


def _rollout_kind(body: Any) -> str | None:
    if isinstance(body, dict):
        return "steady" if body.get("canary_version") is None else "canary"
    return None


RolloutUpdate = Annotated[
    Annotated[SteadyRollout, Tag("steady")] | Annotated[CanaryRollout, Tag("canary")],
    Discriminator(
        _rollout_kind,
        custom_error_type="rollout_body",
        custom_error_message="Input should be a JSON object",
    ),
    Field(
        description="Versions must be loaded in Triton; canary_weight above 0 needs a "
        "canary_version"
    ),
]

# Tags pydantic puts in the location of an error inside a union; not part of a field's path.
UNION_TAGS = frozenset({*ModelName, "steady", "canary"})
