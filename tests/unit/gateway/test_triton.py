from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.triton import RepositoryEntry, TritonGateway, served_model_from_config
from gateway.triton_replicas import ReplicaSet, parse_endpoints
from trademaster.contract.parameters import ContractError, Parameter, TaskKind

CONFIG: dict[str, Any] = {
    "max_batch_size": 1024,
    "input": [{"name": "features", "data_type": "TYPE_FP32", "dims": ["3"]}],
    "output": [{"name": "risk_probability", "data_type": "TYPE_FP32", "dims": ["1"]}],
    "parameters": {
        "feature_service": {"string_value": "risk_model_v1"},
        "feature_names": {"string_value": "a,b,c"},
        "feature_reference": {"string_value": "0.5,1,2"},
        "feature_min": {"string_value": "0,0,0"},
        "feature_max": {"string_value": "1,2,4"},
        "task": {"string_value": "binary_classification"},
    },
}


def _with(**parameters: str) -> dict[str, Any]:
    merged = {**CONFIG["parameters"], **{k: {"string_value": v} for k, v in parameters.items()}}
    return {**CONFIG, "parameters": merged}


def test_served_model_reads_what_the_exporter_wrote() -> None:
    model = served_model_from_config("risk-assessment-model", 4, CONFIG)
    assert model.version == 4
    assert model.task is TaskKind.BINARY_CLASSIFICATION
    assert model.feature_service == "risk_model_v1"
    assert model.feature_names == ("a", "b", "c")
    assert model.feature_reference == (0.5, 1.0, 2.0)
    assert model.feature_bounds == ((0.0, 0.0, 0.0), (1.0, 2.0, 4.0))
    assert model.parameters[Parameter.FEATURE_SERVICE] == "risk_model_v1"
    assert model.max_batch_size == 1024
    assert (model.input_names, model.output_names) == (("features",), ("risk_probability",))


def test_missing_parameters_fail_the_load_naming_the_model() -> None:
    with pytest.raises(ContractError, match=r"^m: config declares no task parameter$"):
        served_model_from_config("m", 1, {**CONFIG, "parameters": {}})
    parameters = dict(CONFIG["parameters"])
    del parameters["feature_reference"]
    with pytest.raises(ContractError, match=r"^m: a binary_classification config needs feature_r"):
        served_model_from_config("m", 1, {**CONFIG, "parameters": parameters})


def test_an_unknown_parameter_fails_the_load() -> None:
    with pytest.raises(ContractError, match=r"^m: unknown config parameter.*feature_servce"):
        served_model_from_config("m", 1, _with(feature_servce="risk_model_v1"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"feature_min": "0,0"}, "must have the same non-zero length"),
        ({"feature_reference": "0.5,one,2"}, "feature_reference is not a list of numbers"),
        ({"feature_names": ""}, "must have the same non-zero length"),
    ],
)
def test_malformed_tabular_values_fail_the_load(change: dict[str, str], problem: str) -> None:
    with pytest.raises(ContractError, match=rf"^m: .*{problem}"):
        served_model_from_config("m", 1, _with(**change))


def _price(**change: str) -> dict[str, Any]:
    values = {
        "task": "regression_interval",
        "feature_service": "price_model_v1",
        "window_feature": "price_window",
        "window": "20",
        "features": "4",
        "interval": "0.9",
        **change,
    }
    return {
        "max_batch_size": 256,
        "parameters": {k: {"string_value": v} for k, v in values.items()},
    }


def test_a_price_model_declares_its_window_and_interval() -> None:
    model = served_model_from_config("price-prediction-lstm", 2, _price())
    assert model.window_shape == (20, 4)
    assert model.interval_level == 0.9


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"window": "twenty"}, "window is not an integer"),
        ({"features": "0"}, "window shape 20 x 0 is empty"),
        ({"interval": "90"}, "interval 90.0 is not in"),
        ({"interval": "high"}, "interval is not a number"),
    ],
)
def test_malformed_price_values_fail_the_load(change: dict[str, str], problem: str) -> None:
    with pytest.raises(ContractError, match=rf"^p: {problem}"):
        served_model_from_config("p", 1, _price(**change))


def test_no_max_batch_size_means_no_batching() -> None:
    config = {
        "parameters": {
            "task": {"string_value": "portfolio_optimization"},
            "default_risk_aversion": {"string_value": "1"},
            "default_max_weight": {"string_value": "1"},
        }
    }
    assert served_model_from_config("portfolio-optimizer", 1, config).max_batch_size == 0
    # Batches of padded portfolios need each row's count of real holdings.
    with pytest.raises(ContractError, match=r"needs a 'holdings' input"):
        served_model_from_config("portfolio-optimizer", 1, {**config, "max_batch_size": 8})
    batched = {**config, "max_batch_size": 8, "input": [{"name": "holdings"}]}
    assert served_model_from_config("portfolio-optimizer", 1, batched).max_batch_size == 8


class FakeClient:
    """The two repository calls of tritonclient's asyncio client."""

    def __init__(self, configs: dict[str, dict[str, Any]]) -> None:
        self.configs = configs
        self.config_reads: list[str] = []

    async def get_model_repository_index(self, **_: Any) -> dict[str, Any]:
        return {
            "models": [{"name": name, "version": "1", "state": "READY"} for name in self.configs]
        }

    async def get_model_config(self, name: str, **_: Any) -> dict[str, Any]:
        self.config_reads.append(name)
        return {"config": self.configs[name]}

    async def close(self) -> None:
        pass


def test_a_broken_config_is_an_entry_with_its_problem_and_is_read_again() -> None:
    client = FakeClient({"good": CONFIG, "bad": _with(windw="3")})

    async def scenario() -> list[RepositoryEntry]:
        replicas: Any = ReplicaSet(parse_endpoints("127.0.0.1:1"), lambda _: client, 5.0)
        triton = TritonGateway("127.0.0.1:1", 1.0, replicas=replicas)
        first = await triton.repository()
        await triton.repository()
        return first

    entries = {entry.name: entry for entry in asyncio.run(scenario())}

    assert entries["good"].served is not None
    assert entries["good"].problem is None
    bad = entries["bad"]
    assert bad.served is None
    assert bad.versions == (1,)
    assert bad.problem is not None
    assert bad.problem.startswith("bad: unknown config parameter")
    # The good config is cached; the bad one is read again (a fix may keep the versions).
    assert client.config_reads.count("good") == 1
    assert client.config_reads.count("bad") == 2
