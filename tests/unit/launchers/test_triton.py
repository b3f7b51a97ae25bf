from __future__ import annotations

from pathlib import Path

from trademaster.launchers.triton import TritonServer


def test_command_uses_explicit_mode_and_the_chosen_ports(tmp_path: Path) -> None:
    server = TritonServer(
        tmp_path / "repo",
        tmp_path / "work",
        models=["a", "b"],
        http_port=18000,
        grpc_port=18001,
        metrics_port=18002,
        model_config_name="gpu",
    )

    cmd = server.command(tmp_path / "backends")

    assert f"--model-repository={(tmp_path / 'repo').resolve()}" in cmd
    assert f"--backend-directory={tmp_path / 'backends'}" in cmd
    for flag in (
        "--http-port=18000",
        "--grpc-port=18001",
        "--metrics-port=18002",
        "--model-control-mode=explicit",
        "--load-model=a",
        "--load-model=b",
        "--exit-on-error=true",
        "--model-config-name=gpu",
    ):
        assert flag in cmd
    assert server.http_url == "127.0.0.1:18000"
    assert server.grpc_url == "127.0.0.1:18001"
    assert server.metrics_url == "http://127.0.0.1:18002/metrics"


def test_free_ports_are_picked_when_none_given(tmp_path: Path) -> None:
    server = TritonServer(tmp_path, tmp_path)

    ports = {server.http_port, server.grpc_port, server.metrics_port}
    assert len(ports) == 3
    assert not server.is_running()
    assert "--model-config-name" not in " ".join(server.command(tmp_path))
