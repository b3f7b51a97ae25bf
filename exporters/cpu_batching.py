"""Dynamic-batching settings of the CPU configs, chosen by measurement.

`python -m benchmarks.serving_sweep` measures candidates on real Triton and writes the chosen
instance count and queue delay per model, with the figures behind each choice, to
`cpu_batching.json` beside this file. The exporters read it when they render a CPU
`config.pbtxt`; a model it does not name keeps its spec's values (which the GPU configs use).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TUNED_FILE = Path(__file__).resolve().with_name("cpu_batching.json")


@dataclass(frozen=True)
class CpuBatching:
    """Instances of a model on one CPU replica, and its batcher's queue delay (None: no
    dynamic batcher, requests run one by one per instance)."""

    instance_count: int
    max_queue_delay_us: int | None

    def __post_init__(self) -> None:
        if self.instance_count < 1:
            raise ValueError(f"instance_count must be >= 1, got {self.instance_count}")
        if self.max_queue_delay_us is not None and self.max_queue_delay_us < 0:
            raise ValueError(f"max_queue_delay_us must be >= 0, got {self.max_queue_delay_us}")

    @property
    def label(self) -> str:
        batcher = (
            "no batcher"
            if self.max_queue_delay_us is None
            else f"delay {self.max_queue_delay_us} us"
        )
        return f"{self.instance_count} inst, {batcher}"

    def as_json(self) -> dict[str, Any]:
        return {
            "instance_count": self.instance_count,
            "max_queue_delay_us": self.max_queue_delay_us,
        }


def parse_tuning(document: Mapping[str, Any], source: Path) -> dict[str, CpuBatching]:
    models = document.get("models")
    if not isinstance(models, dict):
        raise ValueError(f"{source}: expected an object under 'models'")
    tuned = {}
    for name, entry in models.items():
        try:
            delay = entry["max_queue_delay_us"]
            tuned[name] = CpuBatching(
                int(entry["instance_count"]), None if delay is None else int(delay)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: model {name!r}: {exc}") from exc
    return tuned


def load_tuning(path: Path = TUNED_FILE) -> dict[str, CpuBatching]:
    """The chosen settings per model name; empty when nothing was tuned yet."""
    if not path.exists():
        return {}
    return parse_tuning(json.loads(path.read_text(encoding="utf-8")), path)


def tuned_settings(
    name: str, tuning: Mapping[str, CpuBatching] | None = None
) -> CpuBatching | None:
    """The measured settings of model ``name`` in ``tuning`` (default: the tuned file)."""
    return (load_tuning() if tuning is None else tuning).get(name)
