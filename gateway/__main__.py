"""``python -m gateway``: serve the gateway with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import logging

import uvicorn

from gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        "gateway.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
