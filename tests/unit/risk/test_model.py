from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.unit.risk.helpers import N_TRAIN, interaction_problem
from trademaster.risk.model import TrainingConfig, fit_risk_model, predict
from trademaster.training.evaluation import binary_metrics, logistic_baseline, signed_log1p
from trademaster.training.tabular_network import WideAndDeep


@pytest.fixture(scope="module")
def trained() -> tuple[WideAndDeep, np.ndarray, np.ndarray]:
    x, y = interaction_problem()
    model, _ = fit_risk_model(x[:N_TRAIN], y[:N_TRAIN], TrainingConfig(epochs=25))
    return model, x, y


def test_risk_model_beats_logistic_regression_on_held_out_rows(
    trained: tuple[WideAndDeep, np.ndarray, np.ndarray],
) -> None:
    model, x, y = trained

    model_auc = binary_metrics(y[N_TRAIN:], predict(model, x[N_TRAIN:]))["auc"]
    logistic = logistic_baseline(x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:])
    logistic_auc = binary_metrics(y[N_TRAIN:], logistic)["auc"]

    assert logistic_auc < 0.6
    assert model_auc > 0.85
    assert model_auc > logistic_auc + 0.2


def test_the_model_scales_its_own_inputs(
    trained: tuple[WideAndDeep, np.ndarray, np.ndarray],
) -> None:
    model, x, _ = trained
    # The inner validation slice (the latest 15% of training rows) is not used for scaling.
    n_fitted = N_TRAIN - int(N_TRAIN * TrainingConfig().validation_fraction)
    fitted_rows = signed_log1p(x[:n_fitted].astype(np.float64))

    buffers = dict(model.named_buffers())
    assert set(buffers) == {"mean", "std"}
    np.testing.assert_allclose(buffers["mean"].numpy(), fitted_rows.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(buffers["std"].numpy(), fitted_rows.std(axis=0), rtol=1e-4)
    assert {"mean", "std"} <= set(model.state_dict())


def test_forward_standardises_signed_log_features() -> None:
    torch.manual_seed(0)
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 4.0])
    shifted = WideAndDeep(mean, std, hidden=(32, 16))
    plain = WideAndDeep(np.zeros(3), np.ones(3), hidden=(32, 16))
    weights = {k: v for k, v in shifted.state_dict().items() if k not in ("mean", "std")}
    plain.load_state_dict(weights, strict=False)
    x = torch.tensor([[3.0, -40.0, 0.2], [0.0, 1e4, -7.0]])

    scaled = torch.sign(x) * torch.log1p(torch.abs(x))
    standardised = (scaled - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(
        std, dtype=torch.float32
    )
    # Undo signed-log so that ``plain`` sees the standardised values.
    raw = torch.sign(standardised) * torch.expm1(torch.abs(standardised))

    torch.testing.assert_close(shifted(x), plain(raw), rtol=1e-4, atol=1e-5)


def test_output_is_one_probability_per_row() -> None:
    torch.manual_seed(0)
    model = WideAndDeep(np.zeros(15), np.ones(15), hidden=(32, 16)).eval()
    features = torch.randn(37, 15) * 10

    with torch.no_grad():
        output = model(features)

    assert output.shape == (37, 1)
    assert ((output > 0) & (output < 1)).all()
    assert predict(model, features.numpy().astype(np.float64)).shape == (37,)


def test_training_is_reproducible() -> None:
    x, y = interaction_problem(seed=1)
    config = TrainingConfig(epochs=6, min_steps=0, seed=3)

    first, info = fit_risk_model(x[:3_000], y[:3_000], config)
    second, _ = fit_risk_model(x[:3_000], y[:3_000], config)

    np.testing.assert_array_equal(predict(first, x[3_000:3_100]), predict(second, x[3_000:3_100]))
    assert info["best_epoch"] >= 1
    assert info["inner_validation_log_loss"] < np.log(2) + 0.1
