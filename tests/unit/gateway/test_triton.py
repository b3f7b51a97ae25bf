from __future__ import annotations

from gateway.triton import served_model_from_config

CONFIG = {
    "input": [{"name": "features", "data_type": "TYPE_FP32", "dims": ["3"]}],
    "output": [{"name": "risk_probability", "data_type": "TYPE_FP32", "dims": ["1"]}],
    "parameters": {
        "feature_service": {"string_value": "risk_model_v1"},
        "feature_names": {"string_value": "a,b,c"},
        "task": {"string_value": "binary_classification"},
    },
}


def test_served_model_reads_what_the_exporter_wrote() -> None:
    model = served_model_from_config("risk-assessment-model", 4, CONFIG)
    assert model.version == 4
    assert model.task == "binary_classification"
    assert model.feature_service == "risk_model_v1"
    assert model.feature_names == ("a", "b", "c")
    assert (model.input_names, model.output_names) == (("features",), ("risk_probability",))


def test_missing_parameters_give_empty_values_not_errors() -> None:
    model = served_model_from_config("m", 1, {**CONFIG, "parameters": {}})
    assert model.feature_names == ()
    assert model.feature_service is None
