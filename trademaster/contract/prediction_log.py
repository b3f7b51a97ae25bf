"""The prediction log: what the gateway answered, with what inputs; written by the gateway,
read by the pipeline (drift of served features, realized accuracy).

One table, portable across SQLite (the local default, shared by several gateway workers, so
WAL and a busy timeout) and PostgreSQL (production). JSON columns are text encoded with orjson
(identical on both dialects, decoded by ``read_predictions``), so a writer never depends on a
dialect's JSON type. It is a store of its own, never the trading warehouse: a burst of logging
must not lock the tables the pipeline trains on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import sqlalchemy as sa

if TYPE_CHECKING:
    import pandas as pd

Route = Literal["primary", "canary", "shadow"]
ROUTES: tuple[Route, ...] = ("primary", "canary", "shadow")

# How long a SQLite writer waits for another worker's transaction before giving up (the batch
# is then dropped and counted by the gateway, never retried in a loop).
SQLITE_BUSY_TIMEOUT_S = 5.0

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    # The client's X-Request-ID or a generated one; batch rows are "{id}:{row}". A shadow
    # answer has its primary's request id (route tells them apart).
    sa.Column("request_id", sa.String(160), nullable=False),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),  # UTC, when answered
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("route", sa.String(8), nullable=False),  # one of ROUTES
    sa.Column("feature_service", sa.String(64), nullable=True),
    # JSON: the join keys and their values ({"user_id": 12, "symbol": "GOOG"}), or what
    # identifies the request of a model without a feature service (symbols, the text).
    sa.Column("entity", sa.Text, nullable=False),
    # JSON: feature name -> the value fed to the model (after overrides), bounded per model.
    sa.Column("features", sa.Text, nullable=False),
    # JSON: feature view -> ISO event timestamp of the row read from the online store.
    sa.Column("feature_timestamps", sa.Text, nullable=False),
    sa.Column("stale_views", sa.Text, nullable=False),  # JSON list of view names
    sa.Column("prediction", sa.Text, nullable=False),  # JSON: number, label or weights
    # A classifier's or the sentiment model's confidence; None for interval models, whose
    # confidence is the interval below.
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("interval", sa.Text, nullable=True),  # JSON {"level", "lower", "upper"} or null
    # JSON class -> probability of a model that answers with them (sentiment), or null.
    # Added after the first release: ``create_schema`` adds it to an older table.
    sa.Column("probabilities", sa.Text, nullable=True),
    sa.Column("cache_hit", sa.Boolean, nullable=False),
    sa.Index("ix_predictions_model_logged_at", "model_name", "logged_at"),
)

JSON_COLUMNS = (
    "entity",
    "features",
    "feature_timestamps",
    "stale_views",
    "prediction",
    "interval",
    "probabilities",
)
# What a record handed to ``write_records`` holds (the table's columns less the surrogate id),
# in the table's order.
RECORD_FIELDS = tuple(column.name for column in predictions.columns if column.name != "id")
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def prediction_log_engine(url: str) -> sa.Engine:
    """An engine on the log's store. A SQLite file gets its folder created, WAL (readers never
    block the writers of other workers) and a busy timeout, set on every connection."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process
        cursor.close()

    return engine


def create_schema(engine: sa.Engine) -> None:
    """Creates the table, or brings an older one up to date: the columns added since are
    nullable, so ``ALTER TABLE ... ADD COLUMN`` (on SQLite and PostgreSQL alike) keeps
    every logged row, which reads back with nulls there."""
    metadata.create_all(engine, checkfirst=True)
    present = _present_columns(engine)
    for column in predictions.columns:
        if column.name not in present:
            _add_column(engine, column)


def _present_columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return {column["name"] for column in sa.inspect(connection).get_columns(predictions.name)}


def _add_column(engine: sa.Engine, column: sa.Column[Any]) -> None:
    if not column.nullable:
        raise RuntimeError(
            f"prediction log: column {column.name!r} is missing and not nullable; "
            "the table needs a manual migration"
        )
    try:
        with engine.begin() as connection:
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(
                f'ALTER TABLE {predictions.name} ADD COLUMN "{column.name}" {kind}'
            )
    except sa.exc.DBAPIError:
        # Another gateway worker added it first; anything else is raised.
        if column.name not in _present_columns(engine):
            raise


def _json(value: Any) -> str:
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def _json_or_null(value: Any) -> str | None:
    """A nullable JSON column: SQL NULL for None (not the JSON text "null")."""
    return None if value is None else _json(value)


def encode_record(record: Mapping[str, Any], sqlite: bool = False) -> tuple[Any, ...]:
    """A record as a row of ``RECORD_FIELDS``' values: the JSON columns encoded (numpy
    values and datetimes included), ``logged_at`` in UTC, as text for SQLite (the format
    SQLAlchemy's SQLite ``DateTime`` stores and parses, so reads and range filters agree)."""
    logged_at = _utc(record["logged_at"])
    return (
        record["request_id"],
        logged_at.isoformat(" ", "microseconds")[:26] if sqlite else logged_at,
        record["model_name"],
        record["model_version"],
        record["route"],
        record.get("feature_service"),
        _json(record.get("entity") or {}),
        _json(record.get("features") or {}),
        _json(record.get("feature_timestamps") or {}),
        _json(list(record.get("stale_views") or ())),
        _json(record.get("prediction")),
        record.get("confidence"),
        _json_or_null(record.get("interval")),
        _json_or_null(record.get("probabilities")),
        bool(record["cache_hit"]),
    )


def write_records(engine: sa.Engine, records: Sequence[Mapping[str, Any]]) -> int:
    """Inserts ``records`` in one transaction (one executemany); returns how many.

    The rows go to the driver as they are encoded here, past SQLAlchemy's per-row parameter
    processing, which cost more than SQLite's own insert (30 -> 11 us a row)."""
    if not records:
        return 0
    compiled = predictions.insert().compile(dialect=engine.dialect, column_keys=RECORD_FIELDS)
    sqlite = engine.dialect.name == "sqlite"
    rows: list[Any] = [encode_record(record, sqlite) for record in records]
    if compiled.positional:
        assert tuple(compiled.positiontup or ()) == RECORD_FIELDS
    else:  # named parameters (psycopg's pyformat)
        rows = [dict(zip(RECORD_FIELDS, row, strict=True)) for row in rows]
    with engine.begin() as connection:
        connection.exec_driver_sql(str(compiled), rows)
    return len(rows)


def _utc(moment: datetime) -> datetime:
    """Aware UTC (a naive time is taken as UTC, as the log stores it)."""
    if moment.tzinfo is UTC:  # the gateway's: skip the conversion on the writer's path
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_predictions(
    url_or_engine: str | sa.Engine,
    since: datetime,
    until: datetime | None = None,
    model_name: str | None = None,
) -> pd.DataFrame:
    """Logged predictions with ``since <= logged_at < until``, oldest first; JSON columns
    decoded to Python objects and ``logged_at`` as UTC timestamps."""
    import pandas as pd  # the gateway never reads the log: pandas stays out of its import path

    owned = isinstance(url_or_engine, str)
    engine = (
        prediction_log_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    )
    columns = [column.name for column in predictions.columns]
    query = sa.select(predictions).where(predictions.c.logged_at >= _utc(since))
    if until is not None:
        query = query.where(predictions.c.logged_at < _utc(until))
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    query = query.order_by(predictions.c.logged_at, predictions.c.id)
    try:
        with engine.connect() as connection:
            # No table yet: the gateway has logged nothing (its schema is created lazily).
            exists = sa.inspect(connection).has_table(predictions.name)
            rows = connection.execute(query).mappings().all() if exists else []
    finally:
        if owned:
            engine.dispose()
    frame = pd.DataFrame([dict(row) for row in rows], columns=columns)
    for name in JSON_COLUMNS:
        frame[name] = [None if value is None else orjson.loads(value) for value in frame[name]]
    frame["logged_at"] = pd.to_datetime(frame["logged_at"], utc=True)
    frame["cache_hit"] = frame["cache_hit"].astype(bool)
    return frame
