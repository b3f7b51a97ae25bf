"""Online features from Feast for a feature service, many entity rows in one read."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from feast import FeatureView, ValueType
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from gateway import metrics
from gateway.errors import EntityNotFound, FeaturesUnavailable

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.feature_view_projection import FeatureViewProjection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewLayout:
    name: str
    view: FeatureView
    join_keys: tuple[str, ...]
    key_types: tuple[str, ...]  # ValueProto field per join key: "int64_val", "string_val"
    features: tuple[str, ...]
    ttl_s: float | None


@dataclass(frozen=True)
class ServiceLayout:
    views: tuple[ViewLayout, ...]

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(key for view in self.views for key in view.join_keys))


@dataclass(frozen=True)
class FeatureRow:
    values: dict[str, Any]
    stale_views: tuple[str, ...]
    # Per view, the event timestamp of the row read (the prediction log records it).
    event_timestamps: dict[str, datetime] = field(default_factory=dict)


KEY_FIELDS = {
    ValueType.INT64: "int64_val",
    ValueType.INT32: "int32_val",
    ValueType.STRING: "string_val",
}


def python_value(value: ValueProto) -> Any:
    kind = value.WhichOneof("val")
    if kind is None:
        return None
    field = getattr(value, kind)
    return list(field.val) if kind.endswith("_list_val") else field


def _view_name(projection: FeatureViewProjection) -> str:
    """The view's name in responses (alias, version tag); Feast leaves it unannotated."""
    return cast(Callable[[], str], projection.name_to_use)()


def _python_values(record: dict[str, ValueProto]) -> dict[str, Any]:
    return {name: python_value(value) for name, value in record.items()}


class OnlineFeatures:
    """Reads a feature service's views straight through Feast's Redis online store
    (``RedisOnlineStore.online_read_async``, one pipelined HMGET per view, views in
    parallel): the same keys and values as ``FeatureStore.get_online_features`` without
    its per-call request planning and response building, which cost more than the reads."""

    def __init__(self, store: FeatureStore, timeout_s: float) -> None:
        self._store = store
        self._config = store.config
        self._online = RedisOnlineStore()
        self._timeout_s = timeout_s
        self._layouts: dict[str, ServiceLayout] = {}

    def layout(self, service_name: str) -> ServiceLayout:
        """Views, join keys and ttls of a feature service, read from the registry once."""
        if service_name not in self._layouts:
            try:
                service = self._store.get_feature_service(service_name)
                views = []
                for projection in service.feature_view_projections:
                    view = self._store.get_feature_view(projection.name)
                    entities = [self._store.get_entity(name) for name in view.entities]
                    views.append(
                        ViewLayout(
                            _view_name(projection),
                            view,
                            tuple(entity.join_key for entity in entities),
                            tuple(KEY_FIELDS[entity.value_type] for entity in entities),
                            tuple(f.name for f in projection.features),
                            view.ttl.total_seconds() if view.ttl else None,
                        )
                    )
            except Exception as exc:  # registry missing or unreadable
                raise FeaturesUnavailable(
                    f"feature service {service_name} is not in the Feast registry: {exc}"
                ) from exc
            self._layouts[service_name] = ServiceLayout(tuple(views))
        return self._layouts[service_name]

    def absent_entity(self, service_name: str) -> dict[str, Any]:
        """Join key values no entity has (-1, or a key of NUL characters): what a warm-up
        reads to run the read path without touching a real entity."""
        absent: dict[str, Any] = {}
        for view in self.layout(service_name).views:
            for key, kind in zip(view.join_keys, view.key_types, strict=True):
                absent[key] = "\x00warm-up" if kind == "string_val" else -1
        return absent

    async def read(
        self,
        service_name: str,
        entity_rows: Sequence[dict[str, Any]],
        metric_labels: tuple[str, str],
    ) -> list[FeatureRow | EntityNotFound]:
        """One online read for all rows; a row whose entity is unknown gets its own error."""
        layout = self.layout(service_name)
        started = time.perf_counter()
        try:
            per_view = await asyncio.wait_for(
                asyncio.gather(*(self._read_view(view, entity_rows) for view in layout.views)),
                self._timeout_s,
            )
        except Exception as exc:  # Feast surfaces Redis failures in many types
            log.warning("Feast online read failed: %s", exc)
            raise FeaturesUnavailable(
                f"feature store unavailable for {service_name}: {type(exc).__name__}"
            ) from exc
        finally:
            metrics.FEAST_DURATION.labels(*metric_labels).observe(time.perf_counter() - started)
        now = datetime.now(UTC)
        return [
            self._row(layout, per_view, index, entities, now)
            for index, entities in enumerate(entity_rows)
        ]

    async def _read_view(
        self, view: ViewLayout, entity_rows: Sequence[dict[str, Any]]
    ) -> list[tuple[datetime | None, dict[str, Any] | None]]:
        """Each distinct entity of the view is read once (a batch of 1,000 rows usually
        names far fewer symbols), values converted to Python once per distinct entity."""
        distinct = list(
            dict.fromkeys(tuple(row[key] for key in view.join_keys) for row in entity_rows)
        )
        keys = [
            EntityKeyProto(
                join_keys=list(view.join_keys),
                entity_values=[
                    ValueProto(**{field: value})
                    for value, field in zip(values, view.key_types, strict=True)
                ],
            )
            for values in distinct
        ]
        found = await self._online.online_read_async(
            self._config, view.view, keys, list(view.features)
        )
        by_entity = {
            values: (timestamp, None if record is None else _python_values(record))
            for values, (timestamp, record) in zip(distinct, found, strict=True)
        }
        return [by_entity[tuple(row[key] for key in view.join_keys)] for row in entity_rows]

    @staticmethod
    def _row(
        layout: ServiceLayout,
        per_view: list[list[tuple[datetime | None, dict[str, Any] | None]]],
        index: int,
        entities: dict[str, Any],
        now: datetime,
    ) -> FeatureRow | EntityNotFound:
        values: dict[str, Any] = {}
        stale: list[str] = []
        timestamps: dict[str, datetime] = {}
        for view, rows in zip(layout.views, per_view, strict=True):
            timestamp, found = rows[index]
            view_values = {name: found.get(name) if found else None for name in view.features}
            if all(value is None for value in view_values.values()):
                missing = ", ".join(f"{key} {entities.get(key)!r}" for key in view.join_keys)
                return EntityNotFound(f"unknown {missing}: no features in {view.name}")
            values.update(view_values)
            if timestamp is None:
                continue
            timestamps[view.name] = timestamp
            if view.ttl_s is not None and (now - timestamp).total_seconds() > view.ttl_s:
                stale.append(view.name)
        return FeatureRow(values, tuple(stale), timestamps)
