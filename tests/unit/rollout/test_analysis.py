"""Canary analysis on metrics rendered by prometheus_client itself, as the gateway serves them."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from scipy.stats import binomtest

from trademaster.rollout.analysis import (
    CanaryThresholds,
    Snapshot,
    gather,
    histogram_quantile,
    judge,
    wilson_interval,
)

MODEL = "risk-assessment-model"
OLD, NEW = 3, 4
LIMITS = CanaryThresholds(
    min_requests=100, max_error_rate=0.01, max_latency_ratio=2.0, max_disagreement=0.25
)


class FakeGatewayMetrics:
    """The gateway's route and shadow metrics (same names, labels and buckets)."""

    def __init__(self) -> None:
        from gateway.metrics import LATENCY_BUCKETS

        self.registry = CollectorRegistry()
        self.answers = Counter(
            "ml_route_answers_total",
            "answers",
            ["model_name", "model_version", "route", "outcome"],
            registry=self.registry,
        )
        self.inference = Histogram(
            "ml_triton_request_duration_seconds",
            "inference",
            ["model_name", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.difference = Histogram(
            "ml_shadow_difference",
            "difference",
            ["model_name", "shadow_version"],
            buckets=(0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=self.registry,
        )

    def serve(
        self,
        version: int,
        route: str,
        ok: int,
        errors: int,
        seconds: float,
        diff: float = 0.0,
        shadow_seconds: float = 0.004,
    ) -> None:
        labels = (MODEL, str(version), route)
        self.answers.labels(*labels, "ok").inc(ok)
        if errors:
            self.answers.labels(*labels, "error").inc(errors)
        for _ in range(ok + errors):
            self.inference.labels(MODEL, str(version)).observe(seconds)
        if route == "canary":
            for _ in range(ok):
                self.difference.labels(MODEL, str(OLD)).observe(diff)
                # The champion answers the canary's inputs again, as its shadow.
                self.inference.labels(MODEL, str(OLD)).observe(shadow_seconds)

    def snapshot(self) -> Snapshot:
        return Snapshot.parse(generate_latest(self.registry).decode())


@pytest.mark.parametrize(("failures", "total"), [(0, 100), (1, 100), (5, 120), (30, 40)])
def test_wilson_interval_matches_scipy(failures: int, total: int) -> None:
    expected = binomtest(failures, total).proportion_ci(0.95, method="wilson")
    low, high = wilson_interval(failures, total)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    # 10 observations <= 0.01, 10 more in (0.01, 0.05]: the 0.75 rank (15) is halfway.
    assert histogram_quantile(0.75, {0.01: 10, 0.05: 20, math.inf: 20}) == pytest.approx(0.03)
    assert histogram_quantile(0.5, {0.01: 0, math.inf: 0}) is None
    assert histogram_quantile(0.99, {0.01: 5, math.inf: 10}) == 0.01  # beyond the last bound


def test_only_the_window_counts() -> None:
    metrics = FakeGatewayMetrics()
    metrics.serve(OLD, "primary", ok=500, errors=50, seconds=0.004)  # before the canary
    before = metrics.snapshot()
    metrics.serve(OLD, "primary", ok=300, errors=0, seconds=0.004)
    metrics.serve(NEW, "canary", ok=120, errors=0, seconds=0.004, diff=0.02)

    evidence = gather(before, metrics.snapshot(), MODEL, OLD, NEW)

    assert (evidence.primary.answers, evidence.primary.errors) == (300, 0)
    assert (evidence.canary.answers, evidence.canary.errors) == (120, 0)
    assert evidence.compared == 120
    assert evidence.mean_disagreement == pytest.approx(0.02)
    assert evidence.canary.p90_s is not None
    assert 0.003 < evidence.canary.p90_s <= 0.005


def _verdict(errors: int, canary_s: float, diff: float, answers: int = 150) -> list[str]:
    metrics = FakeGatewayMetrics()
    before = metrics.snapshot()
    metrics.serve(OLD, "primary", ok=400, errors=0, seconds=0.004)
    metrics.serve(NEW, "canary", ok=answers - errors, errors=errors, seconds=canary_s, diff=diff)
    verdict = judge(gather(before, metrics.snapshot(), MODEL, OLD, NEW), LIMITS)
    return ["promote"] if verdict.promote else verdict.reasons


def test_a_healthy_canary_is_promoted() -> None:
    assert _verdict(errors=1, canary_s=0.004, diff=0.03) == ["promote"]


def test_errors_beyond_the_interval_roll_back() -> None:
    reasons = _verdict(errors=8, canary_s=0.004, diff=0.03)
    assert any("canary errors 8/150" in line for line in reasons)


def test_slow_canary_rolls_back() -> None:
    reasons = _verdict(errors=0, canary_s=0.2, diff=0.03)
    assert any(line.startswith("p90 inference canary") for line in reasons), reasons


def test_latency_needs_samples_on_both_sides() -> None:
    metrics = FakeGatewayMetrics()
    before = metrics.snapshot()
    metrics.serve(NEW, "canary", ok=10, errors=0, seconds=0.2, diff=0.0)
    evidence = gather(before, metrics.snapshot(), MODEL, OLD, NEW)
    verdict = judge(evidence, LIMITS)
    assert "latency not compared: 10 and 10 Triton calls (needs 20 each)" in verdict.reasons


def test_disagreeing_canary_rolls_back() -> None:
    reasons = _verdict(errors=0, canary_s=0.004, diff=0.5)
    assert any("mean |canary - champion| 0.5000" in line for line in reasons)


def test_too_few_answers_roll_back() -> None:
    reasons = _verdict(errors=0, canary_s=0.004, diff=0.03, answers=40)
    assert any("40 canary answers (needs 100)" in line for line in reasons)
