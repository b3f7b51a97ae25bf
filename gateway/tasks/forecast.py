"""Regression with a conformal interval (price-prediction-lstm): a symbol's latest price
window from Feast in, (point, lower, upper) of the next-period log return out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.errors import EntityNotFound, GatewayError, InvalidFeatures, InvalidRequest
from gateway.schemas import PredictRequest
from gateway.tasks.base import Answer, Context, Prepared, key_material, require, stack_inputs
from gateway.triton import ServedModel

INPUT = "window"


def window_shape(model: ServedModel) -> tuple[int, int]:
    return int(model.parameter("window", "0")), int(model.parameter("features", "0"))


async def read_windows(
    ctx: Context, model: ServedModel, symbols: Sequence[str]
) -> list[tuple[np.ndarray, tuple[str, ...]] | GatewayError]:
    """Each symbol's latest window as ``[1, W, F]`` (one Feast read for all symbols)."""
    shape = window_shape(model)
    column = model.parameter("window_feature", "price_window")
    rows = await ctx.features.read(
        str(model.feature_service),
        [{"symbol": symbol} for symbol in symbols],
        (model.name, str(model.version)),
    )
    out: list[tuple[np.ndarray, tuple[str, ...]] | GatewayError] = []
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
        out.append((values.reshape(1, *shape), row.stale_views))
    return out


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
        windows = await read_windows(ctx, model, [str(request.symbol) for request in requests])
        out: list[Prepared | GatewayError] = []
        for request, item in zip(requests, windows, strict=True):
            if isinstance(item, GatewayError):
                out.append(item)
                continue
            window, stale = item
            out.append(Prepared(request, {INPUT: window}, key_material(window), stale))
        return out

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        forecast = (await ctx.triton.infer(model, stack_inputs(prepared)))["forecast"]
        level = float(model.parameter("interval", "0.9"))
        return [interval_answer(row, level) for row in forecast.reshape(len(prepared), 3)]
