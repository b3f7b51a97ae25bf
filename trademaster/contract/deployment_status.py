"""What the exporter publishes beside the model repository: per catalog model, whether it is
deployed (has a champion exported) and, if not, why. The gateway reads it to tell a model that
was never deployed (503 with the reason) from one it does not know (404).

The file lives at the repository's root (``deployment_status.json``); Triton runs with explicit
model control and only ever looks at model folders. Writes are atomic (a temporary file
renamed over the old one) under an exclusive lock, so parallel export tasks never lose each
other's entries and a reader never sees half a file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from trademaster.contract.atomic_file import locked, read_json, replacing

STATUS_FILE = "deployment_status.json"


@dataclass(frozen=True)
class ModelDeployment:
    model_name: str
    deployed: bool
    champion_version: int | None
    reason: str  # why it is not deployed; what was exported otherwise
    updated_at: str

    @classmethod
    def now(
        cls, model_name: str, deployed: bool, champion_version: int | None, reason: str
    ) -> ModelDeployment:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(model_name, deployed, champion_version, reason, stamp)


def status_path(repository: Path) -> Path:
    return repository / STATUS_FILE


def read_statuses(path: Path) -> dict[str, ModelDeployment]:
    """Every model's entry; empty if the file does not exist yet. A corrupt file is an error
    naming it (it is only ever replaced whole, so corruption means someone edited it)."""
    raw = read_json(path)
    if raw is None:
        return {}
    try:
        return {name: ModelDeployment(**entry) for name, entry in raw["models"].items()}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} does not hold deployment statuses: {exc}") from exc


def record_status(repository: Path, status: ModelDeployment) -> None:
    """Replaces ``status.model_name``'s entry, keeping every other model's. An entry that
    says the same (all but ``updated_at``) is left as it is: ``updated_at`` is when the
    status last changed, and a rerun that changes nothing writes nothing."""
    repository.mkdir(parents=True, exist_ok=True)
    path = status_path(repository)
    with locked(repository / f".{STATUS_FILE}.lock"):
        statuses = read_statuses(path)
        current = statuses.get(status.model_name)
        if current is not None and replace(current, updated_at=status.updated_at) == status:
            return
        statuses[status.model_name] = status
        body = {"models": {name: asdict(entry) for name, entry in sorted(statuses.items())}}
        with replacing(path) as temporary:
            temporary.write_text(json.dumps(body, indent=2) + "\n")
