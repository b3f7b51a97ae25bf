from __future__ import annotations

import pytest

from tests.unit.warehouse.helpers import END_DATE, small_settings
from trademaster.settings import PipelineSettings
from trademaster.warehouse.seed import WarehouseFrames, generate_frames

SIZE_FIELDS = (
    "seed",
    "n_users",
    "n_trades",
    "n_generated_symbols",
    "history_business_days",
    "trade_window_business_days",
)


@pytest.fixture(scope="session")
def small_frames() -> WarehouseFrames:
    return generate_frames(small_settings())


@pytest.fixture(scope="session")
def default_settings() -> PipelineSettings:
    """The declared default sizes, passed explicitly so that TRADEMASTER_* variables in the
    environment cannot shrink them."""
    defaults = {name: PipelineSettings.model_fields[name].default for name in SIZE_FIELDS}
    return PipelineSettings(end_date=END_DATE, **defaults)


@pytest.fixture(scope="session")
def default_frames(default_settings: PipelineSettings) -> WarehouseFrames:
    return generate_frames(default_settings)
