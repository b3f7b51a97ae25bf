"""The training DAG, run end to end with dag.test() through `trademaster pipeline run`."""

from __future__ import annotations

import httpx
import mlflow
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.integration.stack import RISK_MODEL
from trademaster.features.store import open_feature_store
from trademaster.launchers.mlflow_server import MlflowServer
from trademaster.pipeline.plan import MODELS, task_suffix
from trademaster.registry import configure_mlflow
from trademaster.settings import PipelineSettings

pytestmark = pytest.mark.integration

TASKS = (
    "extract",
    "validate_data",
    "engineer_features",
    *(
        f"{step}_{task_suffix(model)}"
        for model in MODELS
        for step in ("train", "validate", "export")
    ),
)


def test_every_task_ran_and_the_run_succeeded(pipeline_run: tuple[PipelineSettings, str]) -> None:
    _, output = pipeline_run
    for task_id in TASKS:
        assert f"[pipeline] {task_id}: success" in output, f"task {task_id} did not succeed"
    assert "DAG trademaster_training finished: success" in output


def test_registered_champion_has_signature_metrics_and_parity(
    pipeline_settings: PipelineSettings,
) -> None:
    configure_mlflow(pipeline_settings)
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias(RISK_MODEL, "champion")
    assert champion.run_id is not None
    metrics = client.get_run(champion.run_id).data.metrics

    info = mlflow.models.get_model_info(f"models:/{RISK_MODEL}/{champion.version}")
    assert info.signature is not None
    (features,) = info.signature.inputs.inputs
    assert features.shape == (-1, 15)
    assert champion.tags["feature_service"] == "risk_model_v1"
    assert champion.tags["validation"] == "passed"
    assert metrics["holdout_auc"] >= metrics["prevalence_auc"] + pipeline_settings.min_auc_lift
    assert "logistic_auc" in metrics
    assert metrics["onnx_parity_max_abs_diff"] < 1e-4


def test_model_repository_has_cpu_and_gpu_configs_and_dynamic_batch_onnx(
    pipeline_settings: PipelineSettings,
) -> None:
    model_dir = pipeline_settings.model_repository / RISK_MODEL
    cpu = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    gpu = text_format.Parse((model_dir / "configs" / "gpu.pbtxt").read_text(), mc.ModelConfig())

    assert cpu.backend == "python"
    assert cpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert gpu.backend == "onnxruntime"
    assert gpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    accelerators = gpu.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == ["tensorrt"]
    for config in (cpu, gpu):
        assert config.max_batch_size >= 1024
        assert config.HasField("dynamic_batching")
        assert config.parameters["feature_service"].string_value == "risk_model_v1"

    graph = onnx.load(str(model_dir / "1" / "model.onnx")).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param, "the batch dimension must be dynamic"
    assert (model_dir / "1" / "model.py").is_file()


def test_online_store_serves_features_of_warehouse_entities(
    pipeline_settings: PipelineSettings,
) -> None:
    store = open_feature_store(
        pipeline_settings.feature_store_root, pipeline_settings.online_store_redis
    )
    service = store.get_feature_service("risk_model_v1")
    rows = store.get_online_features(
        features=service,
        entity_rows=[{"user_id": 1, "symbol": "SYN001"}, {"user_id": 2, "symbol": "GOOG"}],
    ).to_dict()
    assert rows["avg_leverage"][0] is not None
    assert rows["price_volatility"][0] is not None
    assert rows["price_volatility"][1] is not None  # real GOOG history, its last bar is 2013


def test_the_tracking_server_shows_runs_versions_and_aliases(
    pipeline_settings: PipelineSettings, mlflow_server: MlflowServer
) -> None:
    """What the MLflow UI shows, read from the server's REST API: the pipeline talked HTTP to
    it, and every model has a version aliased champion with its run and artifacts there."""
    assert pipeline_settings.resolved_mlflow_tracking_uri == mlflow_server.url
    api = f"{mlflow_server.url}/api/2.0/mlflow"
    with httpx.Client(timeout=10) as client:
        models = client.get(f"{api}/registered-models/search").json()["registered_models"]
        assert {model["name"] for model in models} >= {str(name) for name in MODELS}
        for name in MODELS:
            version = client.get(
                f"{api}/registered-models/alias", params={"name": str(name), "alias": "champion"}
            ).json()["model_version"]
            run = client.get(f"{api}/runs/get", params={"run_id": version["run_id"]}).json()
            assert run["run"]["info"]["status"] == "FINISHED", name
            # Artifacts are the server's (proxied), not paths on the client's disk.
            assert run["run"]["info"]["artifact_uri"].startswith("mlflow-artifacts:/"), name
    assert any(mlflow_server.artifacts_dir.rglob("MLmodel"))
