"""A real `redis-server` on a free port: start, PING, crash, restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from trademaster.launchers.redis_server import RedisServer, find_redis_server
from trademaster.launchers.tools import MissingToolError

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_binary() -> Path:
    try:
        return find_redis_server()
    except MissingToolError as exc:
        pytest.skip(str(exc))


def test_redis_server_starts_dies_and_restarts(redis_binary: Path, tmp_path: Path) -> None:
    with RedisServer(tmp_path, binary=redis_binary) as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        assert client.ping()
        client.set("greeting", "hello")
        pid = server.pid

        server.kill()
        assert not server.is_running()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, socket_timeout=2).ping()

        server.restart()
        assert server.is_running()
        assert server.pid != pid
        fresh = redis.Redis.from_url(server.url, socket_timeout=2)
        assert fresh.ping()
        # No persistence: a restarted server starts empty.
        assert fresh.get("greeting") is None
        client.close()
        fresh.close()
    assert not server.is_running()


def test_redis_server_is_not_persisted(redis_binary: Path, tmp_path: Path) -> None:
    with (
        RedisServer(tmp_path, binary=redis_binary) as server,
        redis.Redis.from_url(server.url) as client,
    ):
        config = client.config_get("save")
    assert config == {"save": ""}
    assert not list(tmp_path.glob("*.rdb"))
