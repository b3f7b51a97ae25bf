"""The exporter-to-gateway contract: task kinds and the parameters each must declare."""

from __future__ import annotations

import pytest

from trademaster.contract.parameters import (
    REQUIRED,
    ContractError,
    Parameter,
    TaskKind,
    parse_parameters,
)


def _complete(kind: TaskKind) -> dict[str, str]:
    return {Parameter.TASK.value: kind.value, **{key.value: "x" for key in REQUIRED[kind]}}


def test_every_task_kind_says_what_it_requires() -> None:
    assert set(REQUIRED) == set(TaskKind)


@pytest.mark.parametrize("kind", list(TaskKind))
def test_a_complete_config_parses_to_typed_keys(kind: TaskKind) -> None:
    task, parameters = parse_parameters("m", _complete(kind))

    assert task is kind
    assert set(parameters) == REQUIRED[kind] | {Parameter.TASK}
    assert all(isinstance(key, Parameter) for key in parameters)


@pytest.mark.parametrize(
    ("kind", "key"), [(kind, key) for kind in TaskKind for key in sorted(REQUIRED[kind])]
)
def test_each_required_key_is_required(kind: TaskKind, key: Parameter) -> None:
    raw = _complete(kind)
    del raw[key.value]

    with pytest.raises(
        ContractError, match=rf"^my-model: a {kind.value} config needs {key.value}$"
    ):
        parse_parameters("my-model", raw)


def test_the_tabular_and_price_requirements() -> None:
    assert Parameter.FEATURE_REFERENCE in REQUIRED[TaskKind.BINARY_CLASSIFICATION]
    assert Parameter.CLASS_LABELS in REQUIRED[TaskKind.MULTICLASS_CLASSIFICATION]
    assert Parameter.CLASS_LABELS not in REQUIRED[TaskKind.BINARY_CLASSIFICATION]
    assert {Parameter.WINDOW, Parameter.INTERVAL} <= REQUIRED[TaskKind.REGRESSION_INTERVAL]


def test_an_unknown_key_is_refused_naming_the_model_and_the_key() -> None:
    raw = {**_complete(TaskKind.TEXT_SENTIMENT), "windw": "20", "zeta": "1"}

    with pytest.raises(ContractError, match=r"^sentiment-analyzer: unknown .* windw, zeta$"):
        parse_parameters("sentiment-analyzer", raw)


def test_a_config_without_a_task_is_refused() -> None:
    with pytest.raises(ContractError, match=r"^m: config declares no task parameter$"):
        parse_parameters("m", {Parameter.CLASS_LABELS.value: "a,b"})


def test_an_unknown_task_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(
        ContractError, match=r"^m: task 'binary_risk' is not one of .*ensemble_step"
    ):
        parse_parameters("m", {Parameter.TASK.value: "binary_risk"})


def test_a_contract_error_is_a_value_error() -> None:
    # Callers that validate configs generically (ValueError) catch it too.
    assert issubclass(ContractError, ValueError)
