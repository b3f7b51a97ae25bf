from __future__ import annotations

import pytest

from exporters.model_spec import ModelSpec, TensorSpec

FEATURES = (TensorSpec("features", "FP32", (6,)),)
SCORE = (TensorSpec("score", "FP32", (1,)),)


def test_artifact_name_follows_runtime() -> None:
    assert ModelSpec("m", FEATURES, SCORE).artifact_name == "model.onnx"
    assert ModelSpec("m", FEATURES, SCORE, runtime="torchscript").artifact_name == "model.pt"


@pytest.mark.parametrize("dims", [(), (0,), (6, -2)])
def test_tensor_dims_must_be_positive_or_variable(dims: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="dims"):
        TensorSpec("x", "FP32", dims)


def test_tensor_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="data_type"):
        TensorSpec("x", "FP16", (1,))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "bad name"}, "invalid model name"),
        ({"inputs": ()}, "at least one input"),
        ({"outputs": FEATURES}, "unique"),
        ({"preferred_batch_sizes": (2048,)}, "preferred_batch_sizes"),
        ({"cpu_instance_count": 0}, "instance counts"),
        ({"runtime": "tensorflow"}, "runtime"),
        ({"parameters": {"runtime": "onnx"}}, "reserved"),
    ],
)
def test_model_spec_validation(overrides: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "m", "inputs": FEATURES, "outputs": SCORE, **overrides}
    with pytest.raises(ValueError, match=message):
        ModelSpec(**fields)  # type: ignore[arg-type]
