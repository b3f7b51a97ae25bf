"""Single-request latency at concurrency 1: Triton gRPC directly (baseline) vs the gateway on
a cache miss (Feast + Triton + Redis write) and on a cache hit, interleaved in one run.

    .venv/bin/python -m benchmarks.gateway_latency [--requests 1000]

Starts the whole stack like ``make up`` (training first if no model is deployed) on free
ports, and writes ``benchmarks/results/gateway_latency.{json,md}``.
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import tritonclient.grpc as grpcclient

from benchmarks.report import LatencySummary, as_dict, markdown_table, write_results
from trademaster.features.store import feature_service_columns, open_feature_store
from trademaster.settings import PipelineSettings
from trademaster.stack import RunningStack, StackSettings, running_stack

MODEL = "risk-assessment-model"


def entity_pairs(settings: PipelineSettings, count: int, seed: int) -> list[tuple[int, str]]:
    """Distinct (user, generated symbol) pairs: nearly always a cache miss (two pairs with
    identical feature values share a cache entry; those rare hits are not counted)."""
    symbols = [f"SYN{index:03d}" for index in range(1, settings.n_generated_symbols + 1)]
    pairs = [(user, symbol) for user in range(1, settings.n_users + 1) for symbol in symbols]
    random.Random(seed).shuffle(pairs)
    return pairs[:count]


def feature_rows(stack: RunningStack, pairs: list[tuple[int, str]]) -> np.ndarray:
    store = open_feature_store(
        stack.settings.feature_store_root.resolve(), stack.settings.online_store_redis
    )
    service = store.get_feature_service("risk_model_v1")
    online = store.get_online_features(
        features=service, entity_rows=[{"user_id": u, "symbol": s} for u, s in pairs]
    ).to_dict()
    names = feature_service_columns(service)
    return np.array([[online[n][i] for n in names] for i in range(len(pairs))], np.float32)


def measure(stack: RunningStack, requests: int, warmup: int) -> dict[str, list[float]]:
    *pairs, (hot_user, hot_symbol) = entity_pairs(stack.settings, requests + warmup + 1, seed=1)
    rows = feature_rows(stack, pairs)
    hot = {"user_id": hot_user, "symbol": hot_symbol, "model_name": MODEL}
    timings: dict[str, list[float]] = {"triton_grpc": [], "gateway_miss": [], "gateway_hit": []}
    skipped = 0
    triton = grpcclient.InferenceServerClient(stack.triton.grpc_url)
    with httpx.Client(base_url=stack.base_url, timeout=10, headers=stack.headers()) as client:
        client.post("/predict", json=hot)
        for index, (user_id, symbol) in enumerate(pairs):
            # Interleaved, so machine noise hits the three paths alike.
            request_input = grpcclient.InferInput("features", [1, rows.shape[1]], "FP32")
            request_input.set_data_from_numpy(rows[index : index + 1])
            started = time.perf_counter()
            triton.infer(MODEL, [request_input])
            triton_s = time.perf_counter() - started

            body = {"user_id": user_id, "symbol": symbol, "model_name": MODEL}
            started = time.perf_counter()
            miss = client.post("/predict", json=body)
            miss_s = time.perf_counter() - started

            started = time.perf_counter()
            hit = client.post("/predict", json=hot)
            hit_s = time.perf_counter() - started

            if miss.status_code != 200 or hit.headers.get("x-cache") != "hit":
                raise RuntimeError(f"unexpected answers: {miss.text} / {hit.text}")
            if miss.headers.get("x-cache") != "miss":
                skipped += 1  # same feature values as an earlier pair: not a miss
                continue
            if index >= warmup:
                timings["triton_grpc"].append(triton_s)
                timings["gateway_miss"].append(miss_s)
                timings["gateway_hit"].append(hit_s)
    triton.close()
    print(f"[bench] {skipped} pairs were cache hits (identical features) and not counted")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)

    with running_stack(PipelineSettings(), StackSettings(gateway_port=0)) as stack:
        print(f"[bench] {args.requests} requests per path after {args.warmup} warm-up", flush=True)
        timings = measure(stack, args.requests, args.warmup)
    rows = [LatencySummary.of(name, values) for name, values in timings.items()]
    table = markdown_table(rows, baseline=rows[0])
    path = write_results(
        "gateway_latency",
        {
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": f"{platform.node()} {platform.machine()}, CPU only",
            "concurrency": 1,
            "client": "python httpx (keep-alive) / tritonclient.grpc, same process",
            "results": [as_dict(row) for row in rows],
        },
        table,
    )
    print(table)
    print(f"[bench] written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
