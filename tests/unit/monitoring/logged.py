"""Prediction-log rows for the realized-accuracy tests, written and read back through the
log's own contract, so the joins see exactly what ``read_predictions`` returns (ISO
feature times, decoded JSON, UTC ``logged_at``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from trademaster.contract.prediction_log import (
    create_schema,
    prediction_log_engine,
    read_predictions,
    write_records,
)

EPOCH = datetime(2000, 1, 1)


def record(model_name: str, logged_at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{logged_at.isoformat()}",
        "logged_at": logged_at,
        "model_name": model_name,
        "model_version": 2,
        "route": "primary",
        "feature_service": None,
        "entity": {},
        "features": {},
        "feature_timestamps": {},
        "stale_views": (),
        "prediction": None,
        "confidence": None,
        "interval": None,
        "probabilities": None,
        "cache_hit": False,
        **fields,
    }


def write_log(path: Path, records: Sequence[dict[str, Any]]) -> str:
    """A SQLite prediction log at ``path`` holding ``records``; its URL."""
    url = f"sqlite:///{path}"
    engine = prediction_log_engine(url)
    try:
        create_schema(engine)
        write_records(engine, records)
    finally:
        engine.dispose()
    return url


def logged(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """``records`` as ``read_predictions`` returns them."""
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    try:
        create_schema(engine)
        write_records(engine, records)
        return read_predictions(engine, since=EPOCH)
    finally:
        engine.dispose()
