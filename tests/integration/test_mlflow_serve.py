"""The load benchmark's baseline is the same model: `mlflow models serve` of the session's
registered risk champion answers the same real feature rows as Triton serving its export."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from exporters.risk import RISK_OUTPUT, real_feature_rows
from exporters.tabular import INPUT_NAME
from tests.integration.stack import RISK_MODEL, triton_infer
from trademaster.features.store import feature_service_columns, load_definitions
from trademaster.launchers.mlflow_server import MlflowModelServer, MlflowServer
from trademaster.launchers.triton import TritonServer
from trademaster.registry import CHAMPION
from trademaster.settings import PipelineSettings

pytestmark = pytest.mark.integration


def test_mlflow_serve_of_the_champion_answers_as_triton_does(
    pipeline_settings: PipelineSettings,
    mlflow_server: MlflowServer,
    triton: TritonServer,
    tmp_path: Path,
) -> None:
    names = feature_service_columns(load_definitions().risk_model_v1)
    rows = real_feature_rows(pipeline_settings, names, 16).astype(np.float32)

    with MlflowModelServer(
        tmp_path, f"models:/{RISK_MODEL}@{CHAMPION}", mlflow_server.url, workers=1
    ) as mlflow_serve:
        answer = httpx.post(
            f"{mlflow_serve.url}/invocations", json={"inputs": rows.tolist()}, timeout=60
        )

    assert answer.status_code == 200, answer.text
    answered = np.asarray(answer.json()["predictions"], np.float64).reshape(len(rows), 1)
    (probabilities,) = triton_infer(
        "grpc", triton.grpc_url, RISK_MODEL, {INPUT_NAME: rows}, (RISK_OUTPUT,)
    )
    # The registered module and its Triton export: the same risk probability, to float32 rounding.
    np.testing.assert_allclose(answered, probabilities, atol=1e-5)
