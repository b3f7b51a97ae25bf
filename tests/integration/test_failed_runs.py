"""A failed run harms nothing: with the session's trained and served platform, the DAG runs
against a corrupt new day, an unreachable warehouse, a risk horizon beyond the history (its
training raises), an export parity tolerance no graph meets (into a replica's repository that
lacks the risk champion), and a Triton that refuses the load. Each run fails at its stage,
after the configured retries, with a message naming the problems; the champion aliases, the
model repository and the online features are exactly what they were, and the gateway keeps
answering throughout. Once the fault is gone, a rerun on the same data and code succeeds and
registers no new version (each training reuses the version with its fingerprint)."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.stack import RISK_MODEL, Gateway, run_cli
from trademaster import registry
from trademaster.features.store import feature_service_columns, open_feature_store
from trademaster.launchers.triton import TritonServer
from trademaster.pipeline.plan import MODELS, task_suffix
from trademaster.settings import PipelineSettings

pytestmark = [pytest.mark.integration, pytest.mark.pipeline]


def _state(settings: PipelineSettings, pairs: list[tuple[int, str]]) -> dict[str, Any]:
    """Champion versions, every file of the model repository (by content), and the online
    risk features of ``pairs``."""
    champions = {}
    for name in MODELS:
        version = registry.version_for_alias(settings, str(name), registry.CHAMPION)
        champions[str(name)] = version.version if version else None
    files = {
        str(path.relative_to(settings.model_repository)): hashlib.sha256(
            path.read_bytes()
        ).hexdigest()
        for path in sorted(settings.model_repository.rglob("*"))
        if path.is_file()
    }
    store = open_feature_store(settings.feature_store_root, settings.online_store_redis)
    service = store.get_feature_service("risk_model_v1")
    online = store.get_online_features(
        features=service,
        entity_rows=[{"user_id": user, "symbol": symbol} for user, symbol in pairs],
    ).to_dict()
    assert set(feature_service_columns(service)) <= set(online)
    return {"champions": champions, "repository": files, "online": online}


def _pairs(settings: PipelineSettings) -> list[tuple[int, str]]:
    engine = sa.create_engine(settings.resolved_warehouse_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT user_id, symbol FROM trades ORDER BY ts DESC LIMIT 5")
        ).all()
    engine.dispose()
    return [(int(user), str(symbol)) for user, symbol in rows]


def _answers(gateway: Gateway, pair: tuple[int, str]) -> int:
    with gateway.client() as client:
        body = {"model_name": RISK_MODEL, "user_id": pair[0], "symbol": pair[1]}
        return client.post("/predict", json=body).status_code


def _failed_run(settings: PipelineSettings) -> str:
    completed = run_cli(settings, "pipeline", "run", timeout_s=600)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output[-4000:]
    assert "DAG trademaster_training failed" in output, output[-4000:]
    return output


def _corrupt_copy(settings: PipelineSettings, target: Path) -> str:
    """The session warehouse with a corrupt new day of trades: repeated trade ids (in a copy
    without the primary key, as a warehouse may have), a negative price and a null symbol."""
    source = Path(sa.make_url(settings.resolved_warehouse_url).database or "")
    shutil.copyfile(source, target)
    with sqlite3.connect(target) as db:
        db.executescript(
            """
            CREATE TABLE loose_trades AS SELECT * FROM trades;
            DROP TABLE trades;
            ALTER TABLE loose_trades RENAME TO trades;
            INSERT INTO trades SELECT * FROM trades ORDER BY ts DESC LIMIT 3;
            INSERT INTO trades (trade_id, position_id, user_id, symbol, ts, action, side,
                                direction, quantity, price, notional_usd, leverage)
            VALUES (990000001, 990000001, 1, 'SYN001', '2100-01-01 15:00:00', 'open', 'buy',
                    'long', 1.0, -5.0, 5.0, 1.0),
                   (990000002, 990000002, 1, NULL, '2100-01-01 15:00:00', 'open', 'buy',
                    'long', 1.0, 5.0, 5.0, 1.0);
            """
        )
    db.close()
    return f"sqlite:///{target}"


def test_a_corrupt_new_day_fails_validation_and_changes_nothing(
    pipeline_settings: PipelineSettings, gateway: Gateway, tmp_path: Path
) -> None:
    pairs = _pairs(pipeline_settings)
    before = _state(pipeline_settings, pairs)
    assert _answers(gateway, pairs[0]) == 200
    corrupt = pipeline_settings.model_copy(
        update={"warehouse_url": _corrupt_copy(pipeline_settings, tmp_path / "corrupt.db")}
    )

    output = _failed_run(corrupt)

    assert "[pipeline] validate_data: up_for_retry" in output, output[-4000:]
    assert "[pipeline] validate_data: failed" in output, output[-4000:]
    for problem in (
        "trades: 3 rows repeat the key (trade_id)",
        "trades: 1 rows violate 'price is positive'",
        "trades.symbol: 1 null values",
    ):
        assert problem in output, problem
    assert "engineer_features" not in output.split("validate_data: failed")[-1]
    assert _state(pipeline_settings, pairs) == before
    assert _answers(gateway, pairs[0]) == 200


def test_an_unreachable_warehouse_fails_extract_and_changes_nothing(
    pipeline_settings: PipelineSettings, gateway: Gateway, tmp_path: Path
) -> None:
    pairs = _pairs(pipeline_settings)
    before = _state(pipeline_settings, pairs)
    unreachable = pipeline_settings.model_copy(
        update={"warehouse_url": "postgresql+psycopg://ml_reader@127.0.0.1:9/warehouse"}
    )

    output = _failed_run(unreachable)

    assert "[pipeline] extract: up_for_retry" in output, output[-4000:]
    assert "[pipeline] extract: failed" in output, output[-4000:]
    assert "cannot read the warehouse at postgresql+psycopg://ml_reader@127.0.0.1:9" in output
    assert _state(pipeline_settings, pairs) == before
    assert _answers(gateway, pairs[0]) == 200


def _version_counts(settings: PipelineSettings) -> dict[str, int]:
    import mlflow

    registry.configure_mlflow(settings)
    client = mlflow.MlflowClient()
    return {str(name): len(client.search_model_versions(f"name = '{name}'")) for name in MODELS}


def _retried_and_failed(output: str, task: str) -> None:
    assert f"[pipeline] {task}: up_for_retry" in output, output[-4000:]
    assert f"[pipeline] {task}: failed" in output, output[-4000:]


def test_training_that_raises_fails_its_task_and_a_rerun_registers_nothing(
    pipeline_settings: PipelineSettings, gateway: Gateway
) -> None:
    pairs = _pairs(pipeline_settings)
    before = _state(pipeline_settings, pairs)
    versions = _version_counts(pipeline_settings)
    beyond_history = pipeline_settings.model_copy(update={"risk_horizon_days": 100_000})

    output = _failed_run(beyond_history)

    _retried_and_failed(output, f"train_{task_suffix(RISK_MODEL)}")
    assert "risk_horizon_days=100000 business days reach past the last daily bar" in output
    assert _state(pipeline_settings, pairs) == before
    assert _version_counts(pipeline_settings) == versions
    assert _answers(gateway, pairs[0]) == 200

    rerun = run_cli(pipeline_settings, "pipeline", "run", timeout_s=600)
    rerun_output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, rerun_output[-4000:]
    for name in MODELS:
        reused = rf"{name}: version \d+ was trained on the same data, code and parameters"
        assert re.search(reused, rerun_output), name
    assert _version_counts(pipeline_settings) == versions
    assert _state(pipeline_settings, pairs) == before
    assert _answers(gateway, pairs[0]) == 200


def test_an_export_parity_failure_publishes_nothing(
    pipeline_settings: PipelineSettings, gateway: Gateway, tmp_path: Path
) -> None:
    """A replica's model repository still lacks the risk champion, so the run exports it;
    no graph meets a parity tolerance of 1e-12, so the export fails and the replica stays
    as it was (no risk entry, nothing half-written), like everything else."""
    pairs = _pairs(pipeline_settings)
    before = _state(pipeline_settings, pairs)
    replica = tmp_path / "replica_repository"
    shutil.copytree(pipeline_settings.model_repository, replica)
    shutil.rmtree(replica / RISK_MODEL)
    strict = pipeline_settings.model_copy(
        update={"model_repository": replica, "parity_tolerance": 1e-12}
    )
    replica_before = _state(strict, pairs)

    output = _failed_run(strict)

    _retried_and_failed(output, f"export_{task_suffix(RISK_MODEL)}")
    assert f"export parity failed ({RISK_MODEL} v" in output, output[-4000:]
    assert re.search(r"onnx_parity_max_abs_diff = [0-9.e-]+ \(tolerance 1e-12\)", output)
    assert _state(strict, pairs) == replica_before
    assert not (replica / RISK_MODEL).exists()
    assert _state(pipeline_settings, pairs) == before
    assert _answers(gateway, pairs[0]) == 200


def test_triton_refusing_the_load_fails_export_and_changes_nothing(
    pipeline_settings: PipelineSettings, gateway: Gateway, tmp_path: Path
) -> None:
    """A real tritonserver whose model repository holds none of the models refuses every
    load; the served Triton and everything else stay as they were."""
    pairs = _pairs(pipeline_settings)
    before = _state(pipeline_settings, pairs)
    empty = tmp_path / "empty_repository"
    empty.mkdir()
    with TritonServer(empty, tmp_path / "refusing_triton") as refusing:
        output = _failed_run(pipeline_settings.model_copy(update={"triton_url": refusing.http_url}))

    _retried_and_failed(output, f"export_{task_suffix(RISK_MODEL)}")
    assert f"Triton at {refusing.http_url} refused to load {RISK_MODEL}: " in output
    assert _state(pipeline_settings, pairs) == before
    assert _answers(gateway, pairs[0]) == 200
