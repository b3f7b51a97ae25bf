"""Portfolio weights (portfolio-optimizer): holdings in; expected returns from the
price-prediction-lstm forecasts and a shrunk covariance of the same windows' returns go to
the optimizer; weights out, with the portfolio return's interval from the forecasts'.

A batch of portfolios is one forecast of all their distinct holdings and one optimizer call
(in calls of its ``max_batch_size`` portfolios), padded to the widest portfolio with a
``holdings`` count per row; a version exported before the optimizer took batches
(``max_batch_size`` 0) is called once per portfolio."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from gateway.errors import GatewayError, InvalidRequest
from gateway.schemas import PredictRequest
from gateway.tasks.base import (
    Answer,
    Context,
    Prepared,
    filled,
    infer_batched,
    key_material,
    require_plain,
    split_missing,
)
from gateway.tasks.forecast import Window, forecast_windows, read_windows
from gateway.triton import ServedModel
from trademaster.contract.models import ModelName
from trademaster.portfolio.covariance import covariance_from_returns

FORECAST_MODEL = ModelName.PRICE
LOG_RETURN_COLUMN = 0  # of the price window: see trademaster/features/price_window.py
WEIGHTS = "weights"
ERROR = "error"


class PortfolioAllocation:
    def validate(self, model: ServedModel, request: PredictRequest) -> None:
        require_plain(
            request, model, "symbols", refusal="takes symbols, max_weight and risk_aversion only"
        )
        holdings = len(getattr(request, "symbols", None) or ())
        max_weight = getattr(request, "max_weight", None)
        if max_weight is not None and max_weight * holdings < 1 - 1e-9:
            raise InvalidRequest(
                f"max_weight {max_weight} cannot hold {holdings} symbols fully "
                f"invested: it must be at least 1/{holdings} = {1 / holdings:.6f}"
            )

    async def prepare(
        self, ctx: Context, model: ServedModel, requests: Sequence[PredictRequest]
    ) -> list[Prepared | GatewayError]:
        """One Feast read and one forecast (in calls of the forecaster's max_batch_size) for
        the distinct symbols of all requests; a request fails alone if one of its symbols
        has no current window."""
        forecaster = ctx.catalog.resolve(FORECAST_MODEL)
        out, complete = split_missing(requests, model, "symbols")
        holdings = {
            index: list(getattr(requests[index], "symbols", None) or ()) for index in complete
        }
        symbols = list(dict.fromkeys(s for held in holdings.values() for s in held))
        windows: dict[str, Window | GatewayError] = {}
        forecasts: dict[str, np.ndarray] = {}
        if symbols:
            windows = dict(zip(symbols, await read_windows(ctx, forecaster, symbols), strict=True))
            usable = [s for s in symbols if not isinstance(windows[s], GatewayError)]
            if usable:
                stacked = np.concatenate([self._window(windows[s]) for s in usable])
                forecast = await forecast_windows(ctx, forecaster, stacked)
                forecasts = dict(zip(usable, forecast, strict=True))
        for index, held in holdings.items():
            out[index] = self._prepare_one(requests[index], forecaster, held, windows, forecasts)
        return filled(out)

    @staticmethod
    def _window(item: Window | GatewayError) -> np.ndarray:
        assert not isinstance(item, GatewayError)
        return item.values

    def _prepare_one(
        self,
        request: PredictRequest,
        forecaster: ServedModel,
        symbols: list[str],
        windows: dict[str, Window | GatewayError],
        forecasts: dict[str, np.ndarray],
    ) -> Prepared | GatewayError:
        held: list[Window] = []
        for symbol in symbols:
            item = windows[symbol]
            if isinstance(item, GatewayError):
                return item
            held.append(item)
        stale = [symbol for symbol, window in zip(symbols, held, strict=True) if window.stale_views]
        if stale:
            return InvalidRequest(
                "portfolio symbols need current price windows; stale: " + ", ".join(stale)
            )
        stacked = np.concatenate([window.values for window in held])
        forecast = np.stack([forecasts[symbol] for symbol in symbols])
        returns = stacked[:, :, LOG_RETURN_COLUMN].T.astype(np.float64)
        covariance = covariance_from_returns(returns).astype(np.float32)
        inputs = {
            "expected_returns": forecast[:, 0].astype(np.float32),
            "covariance": covariance,
        }
        max_weight = getattr(request, "max_weight", None)
        if max_weight is not None:
            inputs["max_weight"] = np.array([max_weight], np.float32)
        risk_aversion = getattr(request, "risk_aversion", None)
        if risk_aversion is not None:
            inputs["risk_aversion"] = np.array([risk_aversion], np.float32)
        logged: dict[str, Any] = {
            "expected_returns": dict(zip(symbols, forecast[:, 0].tolist(), strict=True)),
            "forecaster_version": forecaster.version,
        }
        if max_weight is not None:
            logged["max_weight"] = max_weight
        if risk_aversion is not None:
            logged["risk_aversion"] = risk_aversion
        return Prepared(
            request,
            inputs,
            key_material(symbols, *inputs.values(), forecaster.version),
            extra={
                "symbols": symbols,
                "lower": forecast[:, 1],
                "upper": forecast[:, 2],
                "level": forecaster.interval_level,
            },
            logged_entity={"symbols": symbols},
            # The optimizer's inputs but the covariance (up to 50 x 50: it is derived from
            # the same windows, whose timestamps are logged).
            logged_features=logged,
            feature_timestamps=oldest_timestamps(held),
        )

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        size = model.max_batch_size
        if size <= 0:
            return [await self._infer_one(ctx, model, item) for item in prepared]
        answers: list[Answer | GatewayError] = []
        for start in range(0, len(prepared), size):
            answers += await self._infer_batch(ctx, model, prepared[start : start + size])
        return answers

    @staticmethod
    async def _infer_batch(
        ctx: Context, model: ServedModel, batch: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        """One call for ``batch``: a refused row carries its reason in ``error`` (a call of
        one portfolio is refused as a whole, which is then that portfolio's error)."""
        try:
            outputs = await ctx.triton.infer(model, padded_inputs(batch), [WEIGHTS, ERROR])
        except InvalidRequest as exc:
            return [exc] * len(batch)
        refusals = outputs[ERROR].reshape(-1)
        answers: list[Answer | GatewayError] = []
        for row, item in enumerate(batch):
            if refusals[row]:
                answers.append(InvalidRequest(f"{model.name}: {_text(refusals[row])}"))
                continue
            holdings = len(item.extra["symbols"])
            answers.append(_answer(item, outputs[WEIGHTS][row, :holdings]))
        return answers

    @staticmethod
    async def _infer_one(ctx: Context, model: ServedModel, item: Prepared) -> Answer | GatewayError:
        """A version taking one portfolio per call: unpadded inputs, refusals as errors."""
        try:
            outputs = await infer_batched(ctx, model, item.inputs, [WEIGHTS])
        except InvalidRequest as exc:
            return exc
        return _answer(item, outputs[WEIGHTS].reshape(-1))


def padded_inputs(prepared: Sequence[Prepared]) -> dict[str, np.ndarray]:
    """The portfolios as one batch: each row padded with zeros to the widest, ``holdings``
    saying how many entries are real, and NaN where a request left max_weight or
    risk_aversion to the model's default."""
    width = max(len(item.inputs["expected_returns"]) for item in prepared)
    rows = len(prepared)
    expected = np.zeros((rows, width), np.float32)
    covariance = np.zeros((rows, width, width), np.float32)
    holdings = np.zeros((rows, 1), np.int32)
    options = {name: np.full((rows, 1), np.nan, np.float32) for name in OPTIONS}
    for row, item in enumerate(prepared):
        count = len(item.inputs["expected_returns"])
        expected[row, :count] = item.inputs["expected_returns"]
        covariance[row, :count, :count] = item.inputs["covariance"]
        holdings[row, 0] = count
        for name, values in options.items():
            if name in item.inputs:
                values[row, 0] = item.inputs[name][0]
    inputs = {"expected_returns": expected, "covariance": covariance, "holdings": holdings}
    # An option no request set is left out: the model's default for every row.
    inputs.update({name: values for name, values in options.items() if not np.isnan(values).all()})
    return inputs


OPTIONS = ("max_weight", "risk_aversion")


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _answer(item: Prepared, weights: np.ndarray) -> Answer:
    lower = float(np.dot(weights, item.extra["lower"]))
    upper = float(np.dot(weights, item.extra["upper"]))
    return {
        "prediction": {
            symbol: float(weight)
            for symbol, weight in zip(item.extra["symbols"], weights, strict=True)
        },
        # The portfolio's next-period log return: each holding's interval, weighted (a
        # conservative bound: it assumes the errors move together).
        "confidence": {"level": item.extra["level"], "lower": lower, "upper": upper},
    }


def oldest_timestamps(windows: Sequence[Window]) -> dict[str, datetime]:
    """Per feature view, the oldest event timestamp among the holdings' windows: the
    portfolio is as fresh as its stalest input."""
    oldest: dict[str, datetime] = {}
    for window in windows:
        for view, moment in window.event_timestamps.items():
            if view not in oldest or moment < oldest[view]:
                oldest[view] = moment
    return oldest
