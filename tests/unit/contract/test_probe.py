"""The probe request from a config as Triton's JSON gives it (what the gateway's warm-up
reads) agrees with the one from the repository's config file (what the agent probes with)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from trademaster.contract.probe import (
    PROBE_TEXT,
    InputShape,
    input_shapes_from_json,
    probe_inputs,
)
from trademaster.serving.triton_control import ModelDefinition

CONFIG = """
name: "m"
max_batch_size: 64
input [
  { name: "expected_returns" data_type: TYPE_FP32 dims: [ -1 ] },
  { name: "covariance" data_type: TYPE_FP32 dims: [ -1, -1 ] },
  { name: "holdings" data_type: TYPE_INT32 dims: [ 1 ] optional: true },
  { name: "text" data_type: TYPE_STRING dims: [ 1 ] }
]
output [ { name: "weights" data_type: TYPE_FP32 dims: [ -1 ] } ]
"""


def test_the_json_config_gives_the_agents_probe(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    config = text_format.Parse(CONFIG, model_config_pb2.ModelConfig())
    as_json = json_format.MessageToDict(config, preserving_proto_field_name=True)

    from_json = probe_inputs(input_shapes_from_json(as_json), batched=True)
    from_file = ModelDefinition.read(tmp_path, "m").probe_inputs()

    assert from_json.keys() == from_file.keys() == {"expected_returns", "covariance", "text"}
    for name, array in from_file.items():
        assert from_json[name].shape == array.shape
        assert from_json[name].dtype == array.dtype
    assert from_json["covariance"].shape == (1, 1, 1)  # batch of one, variable dims 1
    assert from_json["text"].tolist() == [[PROBE_TEXT]]
    np.testing.assert_array_equal(from_json["expected_returns"], [[0.0]])


def test_without_batching_there_is_no_batch_dimension_and_unknown_types_are_named() -> None:
    shapes = [InputShape("window", "TYPE_FP32", [30, 5])]
    assert probe_inputs(shapes, batched=False)["window"].shape == (30, 5)
    with pytest.raises(ValueError, match=r"'x': cannot probe type TYPE_BF16"):
        probe_inputs([InputShape("x", "TYPE_BF16", [1])], batched=True)
