"""Online features from Feast for one feature service, with unknown entities named."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.errors import EntityNotFound, FeaturesUnavailable

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewLayout:
    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl_s: float | None


@dataclass(frozen=True)
class FeatureRow:
    values: dict[str, float | None]
    stale_views: tuple[str, ...]


class OnlineFeatures:
    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._layouts: dict[str, tuple[Any, tuple[ViewLayout, ...]]] = {}

    def _layout(self, service_name: str) -> tuple[Any, tuple[ViewLayout, ...]]:
        if service_name not in self._layouts:
            service = self._store.get_feature_service(service_name)
            views = []
            for projection in service.feature_view_projections:
                view = self._store.get_feature_view(projection.name)
                join_keys = tuple(
                    self._store.get_entity(entity).join_key for entity in view.entities
                )
                ttl = view.ttl.total_seconds() if view.ttl else None
                views.append(
                    ViewLayout(
                        projection.name_to_use(),
                        join_keys,
                        tuple(f.name for f in projection.features),
                        ttl,
                    )
                )
            self._layouts[service_name] = (service, tuple(views))
        return self._layouts[service_name]

    async def read(self, service_name: str, entities: dict[str, Any]) -> FeatureRow:
        """Feature values for one entity row; 404 naming any entity the store does not have."""
        try:
            service, views = self._layout(service_name)
            response = await self._store.get_online_features_async(
                features=service, entity_rows=[entities]
            )
            data = response.to_dict(include_event_timestamps=True)
        except EntityNotFound:
            raise
        except Exception as exc:  # Feast wraps Redis and registry failures in many types
            log.warning("Feast online read failed: %s", exc)
            raise FeaturesUnavailable(
                f"feature store unavailable for {service_name}: {type(exc).__name__}"
            ) from exc

        values: dict[str, float | None] = {}
        stale: list[str] = []
        now = time.time()
        for view in views:
            view_values = {name: data[name][0] for name in view.features}
            if all(value is None for value in view_values.values()):
                missing = ", ".join(f"{key} {entities[key]!r}" for key in view.join_keys)
                raise EntityNotFound(f"unknown {missing}: no features in {view.name}")
            values.update(view_values)
            newest = max(data[f"{name}__ts"][0] or 0 for name in view.features)
            if view.ttl_s is not None and now - newest > view.ttl_s:
                stale.append(view.name)
        return FeatureRow(values, tuple(stale))
