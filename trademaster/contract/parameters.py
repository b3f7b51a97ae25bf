"""Task kinds and Triton config parameters: written by the exporters, read by the gateway.

A model's ``config.pbtxt`` carries ``parameters`` (string values). ``Parameter`` names every
key either side uses; ``REQUIRED`` says which keys each task kind must carry, and
``parse_parameters`` refuses a config with a missing or unknown key, naming the model, so a
typo fails the model's load instead of serving a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class TaskKind(StrEnum):
    BINARY_CLASSIFICATION = "binary_classification"
    MULTICLASS_CLASSIFICATION = "multiclass_classification"
    REGRESSION_INTERVAL = "regression_interval"
    TEXT_SENTIMENT = "text_sentiment"
    PORTFOLIO_OPTIMIZATION = "portfolio_optimization"
    # A composing step of an ensemble: never called by clients, skipped by the gateway.
    ENSEMBLE_STEP = "ensemble_step"


class Parameter(StrEnum):
    TASK = "task"
    # Tabular models (and the price model's feature service).
    FEATURE_SERVICE = "feature_service"
    FEATURE_NAMES = "feature_names"
    FEATURE_REFERENCE = "feature_reference"
    FEATURE_MIN = "feature_min"
    FEATURE_MAX = "feature_max"
    CLASS_LABELS = "class_labels"
    # price-prediction-lstm.
    WINDOW_FEATURE = "window_feature"
    WINDOW = "window"
    FEATURES = "features"
    INTERVAL = "interval"
    OUTPUTS = "outputs"
    TARGET = "target"
    # sentiment-analyzer (ensemble and its steps).
    SCORE = "score"
    ENCODER = "encoder"
    ENCODER_PACKAGE = "encoder_package"
    MAX_TOKENS = "max_tokens"
    ENSEMBLE = "ensemble"
    TOKENIZER_FILENAME = "tokenizer_filename"
    # portfolio-optimizer.
    DEFAULT_RISK_AVERSION = "default_risk_aversion"
    DEFAULT_MAX_WEIGHT = "default_max_weight"
    TOLERANCE = "tolerance"
    MAX_ITERATIONS = "max_iterations"
    # Written by the exporter for the CPU runner (python backend); not the gateway's.
    RUNTIME = "runtime"
    MODEL_FILENAME = "model_filename"
    INTRA_OP_THREADS = "intra_op_threads"
    INFERENCE_MODE = "INFERENCE_MODE"


# The coverage of the price model's prediction interval (training calibrates it, the
# exporter declares it, the gateway reports it).
INTERVAL_LEVEL = 0.9

_TABULAR = frozenset(
    {
        Parameter.FEATURE_SERVICE,
        Parameter.FEATURE_NAMES,
        Parameter.FEATURE_REFERENCE,
        Parameter.FEATURE_MIN,
        Parameter.FEATURE_MAX,
    }
)
REQUIRED: Mapping[TaskKind, frozenset[Parameter]] = {
    TaskKind.BINARY_CLASSIFICATION: _TABULAR,
    TaskKind.MULTICLASS_CLASSIFICATION: _TABULAR | {Parameter.CLASS_LABELS},
    TaskKind.REGRESSION_INTERVAL: frozenset(
        {
            Parameter.FEATURE_SERVICE,
            Parameter.WINDOW_FEATURE,
            Parameter.WINDOW,
            Parameter.FEATURES,
            Parameter.INTERVAL,
        }
    ),
    TaskKind.TEXT_SENTIMENT: frozenset({Parameter.CLASS_LABELS}),
    TaskKind.PORTFOLIO_OPTIMIZATION: frozenset(
        {Parameter.DEFAULT_RISK_AVERSION, Parameter.DEFAULT_MAX_WEIGHT}
    ),
    TaskKind.ENSEMBLE_STEP: frozenset({Parameter.ENSEMBLE}),
}


class ContractError(ValueError):
    """A model's config breaks the contract (missing, unknown or malformed parameter)."""


def parse_parameters(
    model_name: str, raw: Mapping[str, str]
) -> tuple[TaskKind, dict[Parameter, str]]:
    """The task kind and the typed parameters of ``model_name``'s config, or ContractError."""
    known = {item.value for item in Parameter}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ContractError(f"{model_name}: unknown config parameter(s) {', '.join(unknown)}")
    if Parameter.TASK not in raw:
        raise ContractError(f"{model_name}: config declares no {Parameter.TASK!s} parameter")
    try:
        task = TaskKind(raw[Parameter.TASK])
    except ValueError:
        kinds = ", ".join(kind.value for kind in TaskKind)
        raise ContractError(
            f"{model_name}: task {raw[Parameter.TASK]!r} is not one of {kinds}"
        ) from None
    parameters = {Parameter(key): value for key, value in raw.items()}
    missing = sorted(key.value for key in REQUIRED[task] - set(parameters))
    if missing:
        raise ContractError(f"{model_name}: a {task} config needs {', '.join(missing)}")
    return task, parameters
