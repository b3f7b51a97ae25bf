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
from feast.infra.online_stores.redis import RedisOnlineStore, _versioned_fv_name
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
    # As Feast stores the view in Redis: the (versioned) name its fields are hashed under,
    # the hash fields read (one per feature, then the row's timestamp), and their names.
    stored_name: str
    hset_keys: tuple[str | bytes, ...]
    fields_read: tuple[str, ...]


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
    """Reads a feature service's views straight through Feast's Redis online store: one
    pipeline of HMGETs for every view and distinct entity of a call (one round trip), with
    the keys, hash fields and value decoding of ``RedisOnlineStore`` (as its own
    ``get_online_features`` path batches them), without ``FeatureStore.get_online_features``'
    per-call request planning and response building, which cost more than the reads.
    tests/integration/test_gateway_predict.py checks the values against that path."""

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
                    features = [f.name for f in projection.features]
                    stored_name = _versioned_fv_name(view, self._config)
                    fields_read, hset_keys = self._online._generate_hset_keys_for_features(
                        view, list(features), fv_name_override=stored_name
                    )
                    views.append(
                        ViewLayout(
                            _view_name(projection),
                            view,
                            tuple(entity.join_key for entity in entities),
                            tuple(KEY_FIELDS[entity.value_type] for entity in entities),
                            tuple(features),
                            view.ttl.total_seconds() if view.ttl else None,
                            stored_name,
                            tuple(hset_keys),
                            tuple(fields_read),
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
                self._read_views(layout, entity_rows), self._timeout_s
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

    async def _read_views(
        self, layout: ServiceLayout, entity_rows: Sequence[dict[str, Any]]
    ) -> list[list[tuple[datetime | None, dict[str, Any] | None]]]:
        """Per view, the timestamp and values of each row's entity. Each distinct entity of
        a view is read once (a batch of 1,000 rows usually names far fewer symbols), its
        values converted to Python once."""
        plans: list[tuple[ViewLayout, list[tuple[Any, ...]], list[bytes]]] = []
        for view in layout.views:
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
            redis_keys = self._online._generate_redis_keys_for_entities(self._config, keys)
            plans.append((view, distinct, redis_keys))
        client = await self._online._get_client_async(self._config.online_store)
        async with client.pipeline(transaction=False) as pipe:
            for view, _, redis_keys in plans:
                for redis_key in redis_keys:
                    pipe.hmget(redis_key, view.hset_keys)
            replies = await pipe.execute()
        per_view = []
        offset = 0
        for view, distinct, redis_keys in plans:
            found = self._online._convert_redis_values_to_protobuf(
                replies[offset : offset + len(redis_keys)], view.stored_name, list(view.fields_read)
            )
            offset += len(redis_keys)
            by_entity = {
                values: (timestamp, None if record is None else _python_values(record))
                for values, (timestamp, record) in zip(distinct, found, strict=True)
            }
            per_view.append(
                [by_entity[tuple(row[key] for key in view.join_keys)] for row in entity_rows]
            )
        return per_view

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
