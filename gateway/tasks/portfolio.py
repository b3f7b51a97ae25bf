"""Portfolio weights (portfolio-optimizer): holdings in; expected returns from the
price-prediction-lstm forecasts and a shrunk covariance of the same windows' returns go to
the optimizer; weights out, with the portfolio return's interval from the forecasts'."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.errors import GatewayError, InvalidRequest
from gateway.schemas import PredictRequest
from gateway.tasks.base import Answer, Context, Prepared, key_material, require
from gateway.tasks.forecast import read_windows
from gateway.triton import ServedModel
from trademaster.portfolio.covariance import covariance_from_returns

FORECAST_MODEL = "price-prediction-lstm"
LOG_RETURN_COLUMN = 0  # of the price window: see trademaster/features/price_window.py


class PortfolioAllocation:
    def validate(self, model: ServedModel, request: PredictRequest) -> None:
        require(request, model, "symbols")
        if request.feature_overrides or request.explain:
            raise InvalidRequest(f"{model.name} takes symbols, max_weight and risk_aversion only")
        holdings = len(request.symbols or ())
        if request.max_weight is not None and request.max_weight * holdings < 1 - 1e-9:
            raise InvalidRequest(
                f"max_weight {request.max_weight} cannot hold {holdings} symbols fully "
                f"invested: it must be at least 1/{holdings} = {1 / holdings:.6f}"
            )

    async def prepare(
        self, ctx: Context, model: ServedModel, requests: Sequence[PredictRequest]
    ) -> list[Prepared | GatewayError]:
        forecaster = ctx.catalog.resolve(FORECAST_MODEL)
        out: list[Prepared | GatewayError] = []
        for request in requests:
            symbols = list(request.symbols or ())
            windows = await read_windows(ctx, forecaster, symbols)
            failed = next((item for item in windows if isinstance(item, GatewayError)), None)
            if failed is not None:
                out.append(failed)
                continue
            stale = [s for s, item in zip(symbols, windows, strict=True) if item[1]]  # type: ignore[index]
            if stale:
                out.append(
                    InvalidRequest(
                        "portfolio symbols need current price windows; stale: " + ", ".join(stale)
                    )
                )
                continue
            stacked = np.concatenate([item[0] for item in windows])  # type: ignore[index]
            forecast = (await ctx.triton.infer(forecaster, {"window": stacked}))["forecast"]
            returns = stacked[:, :, LOG_RETURN_COLUMN].T.astype(np.float64)
            covariance = covariance_from_returns(returns).astype(np.float32)
            inputs = {
                "expected_returns": forecast[:, 0].astype(np.float32),
                "covariance": covariance,
            }
            if request.max_weight is not None:
                inputs["max_weight"] = np.array([request.max_weight], np.float32)
            if request.risk_aversion is not None:
                inputs["risk_aversion"] = np.array([request.risk_aversion], np.float32)
            out.append(
                Prepared(
                    request,
                    inputs,
                    key_material(symbols, *inputs.values(), forecaster.version),
                    extra={"symbols": symbols, "lower": forecast[:, 1], "upper": forecast[:, 2]},
                )
            )
        return out

    async def infer(
        self, ctx: Context, model: ServedModel, prepared: Sequence[Prepared]
    ) -> list[Answer | GatewayError]:
        answers: list[Answer | GatewayError] = []
        for item in prepared:  # max_batch_size 0: one portfolio per call
            try:
                weights = (await ctx.triton.infer(model, item.inputs))["weights"].reshape(-1)
            except InvalidRequest as exc:
                answers.append(exc)
                continue
            lower = float(np.dot(weights, item.extra["lower"]))
            upper = float(np.dot(weights, item.extra["upper"]))
            answers.append(
                {
                    "prediction": {
                        symbol: float(weight)
                        for symbol, weight in zip(item.extra["symbols"], weights, strict=True)
                    },
                    # The portfolio's next-period log return: each holding's 90% interval,
                    # weighted (a conservative bound: it assumes the errors move together).
                    "confidence": {"level": 0.9, "lower": lower, "upper": upper},
                }
            )
        return answers
