"""Loading exported versions into a running Triton (explicit model-control mode)."""

from __future__ import annotations

import logging

import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

log = logging.getLogger(__name__)


class TritonLoadRefused(RuntimeError):
    """Triton answered a load request with an error (e.g. the model is not in its repository)."""


def load_into_triton(http_url: str, model_name: str, timeout_s: float = 120.0) -> None:
    """(Re)loads ``model_name``; Triton then serves the newest version in the repository."""
    client = httpclient.InferenceServerClient(url=http_url, network_timeout=timeout_s)
    try:
        try:
            client.load_model(model_name)
        except InferenceServerException as exc:
            raise TritonLoadRefused(
                f"Triton at {http_url} refused to load {model_name}: {exc.message()}"
            ) from exc
        if not client.is_model_ready(model_name):
            raise TritonLoadRefused(f"Triton at {http_url} did not make {model_name} ready")
        log.info("loaded %s into Triton at %s", model_name, http_url)
    finally:
        client.close()
