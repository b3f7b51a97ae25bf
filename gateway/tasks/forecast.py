"""Regression with a conformal interval (price-prediction-lstm): a symbol's latest price
window from Feast in, (point, lower, upper) of the next-period log return out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np

from gateway.errors import EntityNotFound, GatewayError, InvalidFeatures, InvalidRequest
from gateway.schemas import PredictRequest
from gateway.tasks.base import (
    Answer,
    Context,
    Prepared,
    filled,
    infer_batched,
    key_material,
    require,
    split_missing,
    stack_inputs,
)
from gateway.triton import ServedModel
from trademaster.contract.parameters import Parameter

INPUT = "window"
OUTPUT = "forecast"


class Window(NamedTuple):
    """A symbol's latest window as read from Feast."""

    values: np.ndarray  # [1, W, F]
    stale_views: tuple[str, ...]
    event_timestamps: dict[str, datetime]

    def last_bar(self) -> list[float]:
        """What the prediction log keeps of the window: the newest bar's features (the
        rest of the window is earlier bars' rows, already logged when they were newest)."""
        last: list[float] = self.values[0, -1].tolist()
        return last


async def read_windows(
    ctx: Context, model: ServedModel, symbols: Sequence[str]
) -> list[Window | GatewayError]:
    """Each symbol's latest window as ``[1, W, F]`` (one Feast read for all symbols)."""
    shape = model.window_shape
    column = model.parameter(Parameter.WINDOW_FEATURE)
    rows = await ctx.features.read(
        str(model.feature_service),
        [{"symbol": symbol} for symbol in symbols],
        (model.name, str(model.version)),
    )
    out: list[Window | GatewayError] = []
    for symbol, row in zip(symbols, rows, strict=True):
        if isinstance(row, EntityNotFound):
            out.append(row)
            continue
        values = np.asarray(row.values[column], np.float32)
        if values.size != shape[0] * shape[1]:
            out.append(
                InvalidFeatures(
                    f"{symbol}: price window has {values.size} values, {model.name} "
                    f"version {model.version} expects {shape[0]} x {shape[1]}"
                )
            )
            continue
        out.append(Window(values.reshape(1, *shape), row.stale_views, row.event_timestamps))
    return out


async def forecast_windows(ctx: Context, model: ServedModel, windows: np.ndarray) -> np.ndarray:
    """``[N, 3]`` (point, lower, upper) for ``[N, W, F]`` windows."""
    forecast = (await infer_batched(ctx, model, {INPUT: windows}, [OUTPUT]))[OUTPUT]
    return forecast.reshape(len(windows), 3)


def interval_answer(forecast: np.ndarray, level: float) -> Answer:
    point, lower, upper = (float(value) for value in forecast)
    return {"prediction": point, "confidence": {"level": level, "lower": lower, "upper": upper}}


class IntervalForecast:
    def validate(self, model: ServedModel, request: PredictRequest) -> None:
        require(request, model, "symbol")
        if request.feature_overrides:
            raise InvalidRequest(f"{model.name} takes no feature_overrides")
        if request.explain:
            raise InvalidRequest(f"{model.name} has no feature_importance (sequence model)")

    async def prepare(
        self, ctx: Context, model: ServedModel, requests: Sequence[PredictRequest]
    ) -> list[Prepared | GatewayError]:
        out, keyed = split_missing(requests, model, "symbol")
        symbols = [str(getattr(requests[index], "symbol", None)) for index in keyed]
        windows = await read_windows(ctx, model, symbols) if symbols else []
        column = model.parameter(Parameter.WINDOW_FEATURE)
        for index, symbol, item in zip(keyed, symbols, windows, strict=True):
            if isinstance(item, GatewayError):
                out[index] = item
                continue
            out[index] = Prepared(
                requests[index],
                {INPUT: item.values},
                key_material(item.values),
                item.stale_views,
                logged_entity={"symbol": symbol},
                logged_features={f"{column}_last_bar": item.last_bar()},
                feature_timestamps=item.event_timestamps,
            )
        return filled(out)

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        forecast = await forecast_windows(ctx, model, stack_inputs(prepared)[INPUT])
        return [interval_answer(row, model.interval_level) for row in forecast]
