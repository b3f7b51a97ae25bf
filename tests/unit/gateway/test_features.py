"""A Feast row per entity: values of every view, which views are stale, and when each view's
row was written (the prediction log records it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from gateway.errors import EntityNotFound
from gateway.features import FeatureRow, OnlineFeatures, ServiceLayout, ViewLayout

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def view(name: str, features: tuple[str, ...], ttl_s: float | None) -> ViewLayout:
    # The Feast view object is only used for reads; ``_row`` never touches it.
    return ViewLayout(
        name, cast(Any, None), ("user_id",), ("int64_val",), features, ttl_s, name, (), ()
    )


PerView = list[list[tuple[datetime | None, dict[str, Any] | None]]]
LAYOUT = ServiceLayout((view("user_fv", ("a",), 3600.0), view("market_fv", ("b",), None)))


def test_a_row_carries_each_views_event_timestamp_and_staleness() -> None:
    fresh, old = NOW - timedelta(minutes=5), NOW - timedelta(hours=2)
    per_view: PerView = [[(old, {"a": 1.0})], [(fresh, {"b": 2.0})]]

    row = OnlineFeatures._row(LAYOUT, per_view, 0, {"user_id": 1}, NOW)

    assert isinstance(row, FeatureRow)
    assert row.values == {"a": 1.0, "b": 2.0}
    assert row.stale_views == ("user_fv",)  # older than its 1 h ttl
    assert row.event_timestamps == {"user_fv": old, "market_fv": fresh}


def test_a_view_without_a_timestamp_is_neither_stale_nor_timestamped() -> None:
    per_view: PerView = [[(None, {"a": 1.0})], [(NOW, {"b": 2.0})]]

    row = OnlineFeatures._row(LAYOUT, per_view, 0, {"user_id": 1}, NOW)

    assert isinstance(row, FeatureRow)
    assert (row.stale_views, row.event_timestamps) == ((), {"market_fv": NOW})


def test_an_entity_without_features_is_not_found() -> None:
    per_view: PerView = [[(None, None)], [(NOW, {"b": 2.0})]]

    row = OnlineFeatures._row(LAYOUT, per_view, 0, {"user_id": 7}, NOW)

    assert isinstance(row, EntityNotFound)
    assert "user_id 7" in row.detail
