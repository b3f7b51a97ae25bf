"""``python -m gateway``: serve the gateway with uvicorn (uvloop + httptools).

With several workers, Prometheus metrics go through prometheus_client's multiprocess mode
(one mmap file per worker in a fresh folder), so /metrics adds up all workers.
"""

from __future__ import annotations

import logging
import os
import tempfile

import uvicorn

from gateway.metrics import MULTIPROCESS_ENV
from gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if settings.workers > 1:
        # Read by prometheus_client when each worker imports it; workers inherit it.
        folder = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ[MULTIPROCESS_ENV] = folder
        os.environ["PROMETHEUS_MULTIPROCESS_DIR"] = folder  # the name feast reads
    uvicorn.run(
        "gateway.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="gateway.http_protocol:CoalescingHttpToolsProtocol",
        log_level=settings.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
