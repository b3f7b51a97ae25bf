"""Online features from Feast for a feature service, many entity rows in one read."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway import metrics
from gateway.errors import EntityNotFound, FeaturesUnavailable

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewLayout:
    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl_s: float | None


@dataclass(frozen=True)
class ServiceLayout:
    service: FeatureService
    views: tuple[ViewLayout, ...]

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(key for view in self.views for key in view.join_keys))


@dataclass(frozen=True)
class FeatureRow:
    values: dict[str, Any]
    stale_views: tuple[str, ...]


class OnlineFeatures:
    def __init__(self, store: FeatureStore, timeout_s: float) -> None:
        self._store = store
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
                    join_keys = tuple(
                        self._store.get_entity(entity).join_key for entity in view.entities
                    )
                    views.append(
                        ViewLayout(
                            projection.name_to_use(),
                            join_keys,
                            tuple(f.name for f in projection.features),
                            view.ttl.total_seconds() if view.ttl else None,
                        )
                    )
            except Exception as exc:  # registry missing or unreadable
                raise FeaturesUnavailable(
                    f"feature service {service_name} is not in the Feast registry: {exc}"
                ) from exc
            self._layouts[service_name] = ServiceLayout(service, tuple(views))
        return self._layouts[service_name]

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
            response = await asyncio.wait_for(
                self._store.get_online_features_async(
                    features=layout.service, entity_rows=list(entity_rows)
                ),
                self._timeout_s,
            )
            data = response.to_dict(include_event_timestamps=True)
        except Exception as exc:  # Feast wraps Redis failures in many types
            log.warning("Feast online read failed: %s", exc)
            raise FeaturesUnavailable(
                f"feature store unavailable for {service_name}: {type(exc).__name__}"
            ) from exc
        finally:
            metrics.FEAST_DURATION.labels(*metric_labels).observe(time.perf_counter() - started)
        now = time.time()
        return [
            self._row(layout, data, index, entity_rows[index], now)
            for index in range(len(entity_rows))
        ]

    @staticmethod
    def _row(
        layout: ServiceLayout,
        data: dict[str, list[Any]],
        index: int,
        entities: dict[str, Any],
        now: float,
    ) -> FeatureRow | EntityNotFound:
        values: dict[str, Any] = {}
        stale: list[str] = []
        for view in layout.views:
            view_values = {name: data[name][index] for name in view.features}
            if all(value is None for value in view_values.values()):
                missing = ", ".join(f"{key} {entities.get(key)!r}" for key in view.join_keys)
                return EntityNotFound(f"unknown {missing}: no features in {view.name}")
            values.update(view_values)
            newest = max(data[f"{name}__ts"][index] or 0 for name in view.features)
            if view.ttl_s is not None and now - newest > view.ttl_s:
                stale.append(view.name)
        return FeatureRow(values, tuple(stale))
