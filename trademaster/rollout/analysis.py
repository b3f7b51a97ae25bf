"""Automatic canary analysis: is the canary version as good as the champion on live traffic?

The evidence is the gateway's own Prometheus counters and histograms, read twice (when the
canary starts and now) so only the canary window counts:

- errors: ``ml_route_answers_total`` by version and route (outcome ``error`` is a 5xx);
- latency: ``ml_triton_request_duration_seconds`` by version: the model's own inference time,
  which the cache cannot flatter (the champion's answers are mostly cached, a new version
  starts with none); the champion's samples include its shadow calls on the canary's inputs.
  The quantile is interpolated within its bucket, as Prometheus' ``histogram_quantile``
  does; the bucket bounds are its resolution;
- agreement: ``ml_shadow_difference``: the champion answers the canary's requests as a shadow,
  and the mean |canary - champion| is compared (0/1 for labels).

Error rates carry a 95% Wilson interval; the canary fails on errors only when the interval's
lower bound is above the allowed rate (evidence, not one unlucky request).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Z_95 = 1.959963984540054

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Snapshot:
    """Samples of the gateway's metrics: (sample name, sorted labels) -> value."""

    samples: Mapping[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        samples: dict[tuple[str, Labels], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + float(sample.value)
        return cls(samples)

    def total(self, name: str, **match: str) -> float:
        return sum(
            value
            for (sample, labels), value in self.samples.items()
            if sample == name and _matches(labels, match)
        )

    def buckets(self, name: str, **match: str) -> dict[float, float]:
        """Cumulative counts per upper bound ``le`` of histogram ``name`` (summed over the
        samples matching ``match``)."""
        counts: dict[float, float] = {}
        for (sample, labels), value in self.samples.items():
            if sample == f"{name}_bucket" and _matches(labels, match):
                bound = float(dict(labels)["le"])
                counts[bound] = counts.get(bound, 0.0) + value
        return counts


def _matches(labels: Labels, match: Mapping[str, str]) -> bool:
    found = dict(labels)
    return all(found.get(key) == value for key, value in match.items())


def wilson_interval(failures: float, total: float) -> tuple[float, float]:
    """95% Wilson score interval of a proportion; (0, 1) without observations."""
    if total <= 0:
        return 0.0, 1.0
    p = failures / total
    z2 = Z_95**2
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = Z_95 * math.sqrt(p * (1 - p) / total + z2 / (4 * total**2)) / (1 + z2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def histogram_quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative bucket counts (None if empty)."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            share = (rank - lower_count) / width if width > 0 else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def _delta(now: Mapping[float, float], before: Mapping[float, float]) -> dict[float, float]:
    return {bound: now[bound] - before.get(bound, 0.0) for bound in now}


# Fewer Triton calls than this on either side and latency is not compared.
MIN_LATENCY_SAMPLES = 20


@dataclass(frozen=True)
class RouteEvidence:
    answers: float
    errors: float
    p90_s: float | None
    latency_samples: float

    @property
    def error_interval(self) -> tuple[float, float]:
        return wilson_interval(self.errors, self.answers)


@dataclass(frozen=True)
class CanaryEvidence:
    model_name: str
    primary_version: int
    canary_version: int
    primary: RouteEvidence
    canary: RouteEvidence
    compared: float
    mean_disagreement: float | None

    def as_dict(self) -> dict[str, float | int | str | None]:
        low, high = self.canary.error_interval
        return {
            "canary_answers": self.canary.answers,
            "canary_errors": self.canary.errors,
            "canary_error_rate_95": f"[{low:.4f}, {high:.4f}]",
            "primary_answers": self.primary.answers,
            "primary_errors": self.primary.errors,
            "canary_inference_p90_ms": _ms(self.canary.p90_s),
            "champion_inference_p90_ms": _ms(self.primary.p90_s),
            "compared_with_champion": self.compared,
            "mean_disagreement": self.mean_disagreement,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _route(before: Snapshot, now: Snapshot, model: str, version: int, route: str) -> RouteEvidence:
    labels = {"model_name": model, "model_version": str(version), "route": route}
    answers = sum(
        now.total("ml_route_answers_total", **labels, outcome=outcome)
        - before.total("ml_route_answers_total", **labels, outcome=outcome)
        for outcome in ("ok", "error")
    )
    errors = now.total("ml_route_answers_total", **labels, outcome="error") - before.total(
        "ml_route_answers_total", **labels, outcome="error"
    )
    inference = {"model_name": model, "model_version": str(version)}
    latency = _delta(
        now.buckets("ml_triton_request_duration_seconds", **inference),
        before.buckets("ml_triton_request_duration_seconds", **inference),
    )
    samples = max(latency.values(), default=0.0)
    return RouteEvidence(answers, errors, histogram_quantile(0.9, latency), samples)


def gather(
    before: Snapshot, now: Snapshot, model: str, primary_version: int, canary_version: int
) -> CanaryEvidence:
    shadow = {"model_name": model, "shadow_version": str(primary_version)}
    compared = now.total("ml_shadow_difference_count", **shadow) - before.total(
        "ml_shadow_difference_count", **shadow
    )
    difference = now.total("ml_shadow_difference_sum", **shadow) - before.total(
        "ml_shadow_difference_sum", **shadow
    )
    return CanaryEvidence(
        model,
        primary_version,
        canary_version,
        _route(before, now, model, primary_version, "primary"),
        _route(before, now, model, canary_version, "canary"),
        compared,
        difference / compared if compared > 0 else None,
    )


@dataclass(frozen=True)
class CanaryThresholds:
    min_requests: int
    max_error_rate: float
    max_latency_ratio: float
    max_disagreement: float


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return ("promote: " if self.promote else "roll back: ") + "; ".join(self.reasons)


def judge(evidence: CanaryEvidence, limits: CanaryThresholds) -> Verdict:
    """Every check, passed or failed, with its figures; promote only if all pass."""
    checks: list[tuple[bool, str]] = []
    canary = evidence.canary
    enough = canary.answers >= limits.min_requests
    checks.append((enough, f"{canary.answers:.0f} canary answers (needs {limits.min_requests})"))
    low, high = canary.error_interval
    checks.append(
        (
            low <= limits.max_error_rate,
            f"canary errors {canary.errors:.0f}/{canary.answers:.0f}, 95% interval "
            f"[{low:.4f}, {high:.4f}] (fails if above {limits.max_error_rate})",
        )
    )
    checks.append(_latency_check(evidence, limits.max_latency_ratio))
    if evidence.mean_disagreement is None:
        checks.append((False, "no canary answer was compared with the champion"))
    else:
        checks.append(
            (
                evidence.mean_disagreement <= limits.max_disagreement,
                f"mean |canary - champion| {evidence.mean_disagreement:.4f} over "
                f"{evidence.compared:.0f} answers (at most {limits.max_disagreement})",
            )
        )
    return Verdict(all(ok for ok, _ in checks), [line for _, line in checks])


def _latency_check(evidence: CanaryEvidence, max_ratio: float) -> tuple[bool, str]:
    canary, primary = evidence.canary, evidence.primary
    counts = f"{canary.latency_samples:.0f} and {primary.latency_samples:.0f} Triton calls"
    if min(canary.latency_samples, primary.latency_samples) < MIN_LATENCY_SAMPLES:
        # Too little to tell; errors and agreement still decide.
        return True, f"latency not compared: {counts} (needs {MIN_LATENCY_SAMPLES} each)"
    assert canary.p90_s is not None
    assert primary.p90_s is not None
    ratio = canary.p90_s / primary.p90_s if primary.p90_s > 0 else math.inf
    return (
        ratio <= max_ratio,
        f"p90 inference canary {canary.p90_s * 1000:.2f} ms / champion "
        f"{primary.p90_s * 1000:.2f} ms = {ratio:.2f} over {counts} (at most {max_ratio}; "
        "bucket-interpolated)",
    )
