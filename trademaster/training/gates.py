"""Promotion gates that decide on evidence: paired bootstrap intervals of metric differences.

A gate compares the candidate with a reference (a baseline or the champion) on the same
held-out rows. Rows are resampled with replacement, together for both models (paired), and
in clusters where rows are not independent (a user's snapshots, a block of consecutive
returns). The difference ``candidate - reference`` is oriented so that positive means the
candidate is better; its percentile interval decides:

- ``beats``: the lower bound exceeds the required lift;
- ``not_worse``: the lower bound is at least ``-tolerance`` (the candidate may trail by at
  most the tolerance, judged on the interval, not on the point estimate).

A difference of a few 1e-4, such as float noise between CPUs, can never pass a ``beats`` gate
by luck: the interval of a real difference is far wider than that noise, and a gate whose
interval straddles its margin fails. The resampling is seeded, so the same inputs always give
the same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

RESAMPLES = 1000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 20_261_201
# Resamples evaluated at once (bounds memory: chunk x rows float64 weights).
_CHUNK = 100

GateKind = Literal["beats", "not_worse"]
# Metric values of one prediction vector under bootstrap weights (chunk x rows) -> (chunk,).
WeightedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def bootstrap_weights(
    n_rows: int, groups: np.ndarray | None, resamples: int, seed: int
) -> Iterator[np.ndarray]:
    """Chunks of (resamples x rows) weights: how often each row is drawn. With ``groups``
    whole groups are drawn with replacement (a cluster bootstrap)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        codes, n_groups = np.arange(n_rows), n_rows
    else:
        _, codes = np.unique(groups, return_inverse=True)
        n_groups = int(codes.max()) + 1 if n_rows else 0
    done = 0
    while done < resamples:
        size = min(_CHUNK, resamples - done)
        counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=size)
        yield counts[:, codes].astype(np.float64)
        done += size


def paired_difference(
    metric: WeightedMetric,
    labels: np.ndarray,
    candidate: np.ndarray,
    reference: np.ndarray,
    *,
    higher_is_better: bool = True,
    relative: bool = False,
    groups: np.ndarray | None = None,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """``metric(candidate) - metric(reference)`` (negated for losses; divided by the
    reference's value if ``relative``) with a paired percentile-bootstrap interval."""
    labels, candidate, reference = map(np.asarray, (labels, candidate, reference))
    if not len(labels) == len(candidate) == len(reference):
        raise ValueError(
            f"labels, candidate and reference differ in length: "
            f"{len(labels)}, {len(candidate)}, {len(reference)}"
        )
    if len(labels) == 0:
        raise ValueError("no held-out rows to compare on")
    sign = 1.0 if higher_is_better else -1.0

    def difference(weights: np.ndarray) -> np.ndarray:
        ours, theirs = metric(labels, candidate, weights), metric(labels, reference, weights)
        return sign * (ours - theirs) / (theirs if relative else 1.0)

    estimate = float(difference(np.ones((1, len(labels))))[0])
    differences = np.concatenate(
        [difference(w) for w in bootstrap_weights(len(labels), groups, resamples, seed)]
    )
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(differences, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))


def against_references(
    metric: WeightedMetric,
    metric_name: str,
    labels: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    *,
    candidate: str = "holdout",
    groups: np.ndarray | None = None,
) -> dict[str, Interval]:
    """The ``candidate`` entry's paired difference with every other entry of ``predictions``
    (baselines, the champion), named ``vs_<reference>_<metric_name>`` like the gates."""
    return {
        f"vs_{reference}_{metric_name}": paired_difference(
            metric, labels, predictions[candidate], values, groups=groups
        )
        for reference, values in predictions.items()
        if reference != candidate
    }


# --- weighted metrics (weights: resamples x rows) ---------------------------------------


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC under row weights (Mann-Whitney with ties counted half), per weight row."""
    order = np.argsort(scores, kind="stable")
    sorted_scores, positive = scores[order], labels[order].astype(bool)
    w = weights[:, order]
    # Rows with equal scores form one (contiguous) tie block.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    neg_per_block = np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1)
    pos_per_block = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    neg_below = np.cumsum(neg_per_block, axis=1) - neg_per_block
    wins = (pos_per_block * (neg_below + 0.5 * neg_per_block)).sum(axis=1)
    total = pos_per_block.sum(axis=1) * neg_per_block.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, wins / total, np.nan)


def weighted_macro_f1(n_classes: int) -> WeightedMetric:
    """Macro-F1 over ``n_classes`` (a class absent from labels and predictions scores 0,
    as sklearn's ``f1_score(..., labels=range(n_classes))`` with zero_division=0)."""

    def metric(labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
        cell = labels.astype(np.int64) * n_classes + predicted.astype(np.int64)
        onehot = np.zeros((len(cell), n_classes * n_classes))
        onehot[np.arange(len(cell)), cell] = 1.0
        confusion = (weights @ onehot).reshape(len(weights), n_classes, n_classes)
        true_positive = np.diagonal(confusion, axis1=1, axis2=2)
        actual = confusion.sum(axis=2)
        predicted_total = confusion.sum(axis=1)
        denominator = actual + predicted_total
        f1 = np.divide(
            2 * true_positive, denominator, out=np.zeros_like(denominator), where=denominator > 0
        )
        return np.asarray(f1.mean(axis=1))

    return metric


def weighted_mean(_: np.ndarray, per_row: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of a per-row quantity (a loss such as log loss or squared error)."""
    return np.asarray((weights @ per_row) / weights.sum(axis=1))


def weighted_rmse(labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.sqrt(weighted_mean(labels, (predicted - labels) ** 2, weights))


# --- gates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateRule:
    """One comparison of a model's promotion rule, e.g. macro-F1 beats logistic regression."""

    name: str  # metric key prefix, e.g. "vs_logistic_macro_f1"
    description: str  # "macro-F1 vs logistic regression"
    kind: GateKind
    margin: float  # required lift (beats) or allowed shortfall (not_worse)
    # Compares with the champion: skipped while there is none.
    needs_champion: bool = False

    def metric_keys(self) -> tuple[str, str, str]:
        return (f"gate_{self.name}_diff", f"gate_{self.name}_low", f"gate_{self.name}_high")

    def record(self, interval: Interval) -> dict[str, float]:
        """The interval as MLflow metrics, read back by ``evaluate``."""
        values = (interval.estimate, interval.low, interval.high)
        return dict(zip(self.metric_keys(), values, strict=True))

    def interval(self, metrics: Mapping[str, float]) -> Interval | None:
        keys = self.metric_keys()
        if not all(key in metrics for key in keys):
            return None
        return Interval(*(float(metrics[key]) for key in keys))

    def passes(self, interval: Interval) -> bool:
        if not np.isfinite(interval.low):
            return False
        if self.kind == "beats":
            return interval.low > self.margin
        return interval.low >= -self.margin

    def explain(self, interval: Interval) -> str:
        need = (
            f"needs lower bound > {self.margin:+.4f}"
            if self.kind == "beats"
            else f"may trail by at most {self.margin:.4f}"
        )
        verdict = "pass" if self.passes(interval) else "FAIL"
        return f"{self.description}: {interval} ({need}): {verdict}"


@dataclass(frozen=True)
class GateResult:
    rule: GateRule
    interval: Interval

    @property
    def passed(self) -> bool:
        return self.rule.passes(self.interval)

    def __str__(self) -> str:
        return self.rule.explain(self.interval)


def champion_rule(metric: str, description: str, margin: float, note: str = "") -> GateRule:
    """The rule every model has: not worse than the champion on ``metric`` (e.g. ``auc``) by
    more than ``margin``, on the same held-out rows; skipped while there is no champion.
    ``note`` follows the description (e.g. " (relative)")."""
    return GateRule(
        f"vs_champion_{metric}", f"{description} vs the champion{note}", "not_worse", margin, True
    )


def record(rules: Sequence[GateRule], intervals: Mapping[str, Interval]) -> dict[str, float]:
    """The measured intervals as metrics (``gate_<name>_diff|low|high``); a champion gate may
    be absent, any other missing or unknown gate is an error."""
    known = {rule.name for rule in rules}
    unknown = sorted(set(intervals) - known)
    if unknown:
        raise KeyError(f"intervals for gates no rule declares: {unknown}")
    out: dict[str, float] = {}
    for rule in rules:
        if rule.name in intervals:
            out.update(rule.record(intervals[rule.name]))
        elif not rule.needs_champion:
            raise KeyError(f"no interval measured for gate {rule.name!r}")
    return out


def evaluate(
    rules: Sequence[GateRule], metrics: Mapping[str, float]
) -> tuple[bool, str, list[GateResult]]:
    """Applies ``rules`` to the intervals recorded in ``metrics``. A champion gate is skipped
    when its interval is missing (no champion yet); any other missing interval is an error
    naming the metric."""
    results: list[GateResult] = []
    skipped: list[str] = []
    for rule in rules:
        interval = rule.interval(metrics)
        if interval is None:
            if rule.needs_champion:
                skipped.append(f"{rule.description}: no champion yet")
                continue
            raise KeyError(
                f"metrics lack the interval of gate {rule.name!r} ({', '.join(rule.metric_keys())})"
            )
        results.append(GateResult(rule, interval))
    promoted = all(result.passed for result in results)
    failed = [str(result) for result in results if not result.passed]
    passed = [str(result) for result in results if result.passed]
    reason = "; ".join(failed + passed + skipped)
    return promoted, reason, results
