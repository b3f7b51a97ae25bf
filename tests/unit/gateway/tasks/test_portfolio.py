"""Portfolio weights: validation, forecasts of the holdings, per-request failures."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gateway.errors import EntityNotFound, InvalidRequest
from gateway.tasks.base import Prepared
from gateway.tasks.forecast import Window
from gateway.tasks.portfolio import PortfolioAllocation, oldest_timestamps
from tests.unit.gateway.fakes import bench, request, unchecked_request
from trademaster.contract.models import ModelName

PORTFOLIO = ModelName.PORTFOLIO
ADAPTER = PortfolioAllocation()


def test_max_weight_must_allow_a_fully_invested_portfolio() -> None:
    model = bench(PORTFOLIO).model
    symbols = ["AAA", "BBB", "CCC"]

    ADAPTER.validate(model, request(model_name=PORTFOLIO, symbols=symbols, max_weight=0.34))
    with pytest.raises(InvalidRequest, match=r"at least 1/3 = 0.333333"):
        ADAPTER.validate(model, request(model_name=PORTFOLIO, symbols=symbols, max_weight=0.3))
    with pytest.raises(InvalidRequest, match=r"needs symbols"):
        ADAPTER.validate(model, unchecked_request(PORTFOLIO))


def test_inputs_come_from_one_read_and_one_forecast_of_all_holdings() -> None:
    portfolios = bench(PORTFOLIO, price=2)
    requests = [
        request(model_name=PORTFOLIO, symbols=["AAA", "BBB"], risk_aversion=2.0),
        request(model_name=PORTFOLIO, symbols=["BBB", "CCC"], max_weight=0.6),
    ]

    prepared = portfolios.prepare(ADAPTER, requests)

    reads = portfolios.features.reads
    assert len(reads) == 1
    assert [row["symbol"] for row in reads[0][1]] == ["AAA", "BBB", "CCC"]
    # Three distinct windows, price max_batch_size 2: two calls.
    calls = portfolios.triton.calls_to(ModelName.PRICE)
    assert [len(call.inputs["window"]) for call in calls] == [2, 1]
    first, second = prepared
    assert isinstance(first, Prepared)
    assert isinstance(second, Prepared)
    np.testing.assert_allclose(first.inputs["expected_returns"], [0.02, -0.01], atol=1e-6)
    np.testing.assert_allclose(second.inputs["expected_returns"], [-0.01, 0.02], atol=1e-6)
    assert first.inputs["covariance"].shape == (2, 2)
    assert first.inputs["risk_aversion"].tolist() == [2.0]
    assert "max_weight" not in first.inputs
    assert second.inputs["max_weight"].tolist() == pytest.approx([0.6])


def test_weights_and_the_interval_of_the_portfolio_return() -> None:
    portfolios = bench(PORTFOLIO)

    (answer,) = portfolios.answers(ADAPTER, [request(model_name=PORTFOLIO, symbols=["AAA", "BBB"])])

    assert answer["prediction"] == {"AAA": pytest.approx(0.5), "BBB": pytest.approx(0.5)}
    # Equal weights of (0.02, -0.01) -/+ 0.01, at the forecaster's declared level.
    assert answer["confidence"] == {
        "level": 0.9,
        "lower": pytest.approx(-0.005, abs=1e-6),
        "upper": pytest.approx(0.015, abs=1e-6),
    }
    (call,) = portfolios.triton.calls_to(PORTFOLIO)
    assert call.inputs["expected_returns"].shape == (1, 2)  # one portfolio of two
    assert call.inputs["holdings"].tolist() == [[2]]


def test_a_batch_of_portfolios_is_one_padded_call_each_row_answered_alone() -> None:
    portfolios = bench(PORTFOLIO, portfolio=2)
    requests = [
        request(model_name=PORTFOLIO, symbols=["AAA", "BBB", "CCC"]),
        request(model_name=PORTFOLIO, symbols=["AAA", "BBB"], max_weight=0.4),  # refused
        request(model_name=PORTFOLIO, symbols=["CCC", "AAA"], risk_aversion=2.0),
    ]

    answers = portfolios.answers(ADAPTER, requests)

    first, second = portfolios.triton.calls_to(PORTFOLIO)  # max_batch_size 2
    assert first.inputs["expected_returns"].shape == (2, 3)  # padded to the widest
    assert first.inputs["covariance"].shape == (2, 3, 3)
    assert first.inputs["holdings"].tolist() == [[3], [2]]
    np.testing.assert_array_equal(first.inputs["expected_returns"][1, 2:], [0.0])
    # Only the second row set a cap: the first's NaN takes the model's default.
    assert np.isnan(first.inputs["max_weight"][0, 0])
    assert first.inputs["max_weight"][1, 0] == pytest.approx(0.4)
    assert "risk_aversion" not in first.inputs  # nobody in this call set it
    assert second.inputs["risk_aversion"].tolist() == [[2.0]]
    assert answers[0]["prediction"] == pytest.approx({"AAA": 1 / 3, "BBB": 1 / 3, "CCC": 1 / 3})
    assert isinstance(answers[1], InvalidRequest)
    assert "infeasible" in answers[1].detail
    assert answers[2]["prediction"] == pytest.approx({"CCC": 0.5, "AAA": 0.5})


def test_a_version_without_batches_is_called_once_per_portfolio() -> None:
    portfolios = bench(PORTFOLIO, portfolio=0)
    requests = [
        request(model_name=PORTFOLIO, symbols=["AAA", "BBB", "CCC"]),
        request(model_name=PORTFOLIO, symbols=["AAA", "BBB"]),
    ]

    answers = portfolios.answers(ADAPTER, requests)

    calls = portfolios.triton.calls_to(PORTFOLIO)
    assert [call.inputs["expected_returns"].shape for call in calls] == [(3,), (2,)]
    assert all("holdings" not in call.inputs for call in calls)
    assert answers[1]["prediction"] == pytest.approx({"AAA": 0.5, "BBB": 0.5})


def test_a_request_fails_alone_on_an_unknown_stale_or_missing_holding() -> None:
    portfolios = bench(PORTFOLIO)
    portfolios.features.stale = {}
    requests = [
        request(model_name=PORTFOLIO, symbols=["AAA", "ZZZ"]),  # unknown symbol
        unchecked_request(PORTFOLIO),  # no symbols
        request(model_name=PORTFOLIO, symbols=["AAA", "CCC"]),
    ]

    prepared = portfolios.prepare(ADAPTER, requests)

    assert isinstance(prepared[0], EntityNotFound)
    assert isinstance(prepared[1], InvalidRequest)
    assert isinstance(prepared[2], Prepared)


def test_stale_windows_are_refused() -> None:
    portfolios = bench(PORTFOLIO)
    portfolios.features.stale = {"price_model_v1": ("price_window_fv",)}

    (prepared,) = portfolios.prepare(
        ADAPTER, [request(model_name=PORTFOLIO, symbols=["AAA", "BBB"])]
    )

    assert isinstance(prepared, InvalidRequest)
    assert "stale: AAA, BBB" in prepared.detail


@pytest.mark.parametrize("portfolio", [64, 0])
def test_an_infeasible_portfolio_is_that_requests_error(portfolio: int) -> None:
    """Triton refuses a call of one portfolio as a whole (INVALID_ARGUMENT), batched or not."""
    portfolios = bench(PORTFOLIO, portfolio=portfolio)
    portfolios.triton.refused[PORTFOLIO] = "infeasible"

    (answer,) = portfolios.answers(ADAPTER, [request(model_name=PORTFOLIO, symbols=["AAA", "BBB"])])

    assert isinstance(answer, InvalidRequest)
    assert "infeasible" in answer.detail


def test_the_logged_timestamps_are_the_oldest_of_the_holdings() -> None:
    older, newer = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
    empty = np.zeros((1, 1, 1), np.float32)
    windows = [
        Window(empty, (), {"price_fv": newer, "other_fv": older}),
        Window(empty, (), {"price_fv": older}),
    ]
    assert oldest_timestamps(windows) == {"price_fv": older, "other_fv": older}


def test_a_prepared_portfolio_carries_what_the_log_records() -> None:
    portfolios = bench(PORTFOLIO)
    (item,) = portfolios.prepare(
        ADAPTER, [request(model_name=PORTFOLIO, symbols=["AAA", "CCC"], risk_aversion=2.0)]
    )
    assert isinstance(item, Prepared)
    assert item.logged_entity == {"symbols": ["AAA", "CCC"]}
    assert item.logged_features["expected_returns"] == pytest.approx({"AAA": 0.02, "CCC": 0.02})
    assert item.logged_features["risk_aversion"] == 2.0
    assert "max_weight" not in item.logged_features
