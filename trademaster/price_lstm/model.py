"""price-prediction-lstm: an LSTM over a window of bar features forecasting the next log return.

The module takes the raw window (``trademaster.features.price_window``) and does all its own
scaling: return-like features are divided by the window's realised volatility (so daily, hourly
and monthly series look alike), then standardised with statistics of the training windows.
The network forecasts the next return in units of that volatility; the output is converted back
to return units, with the split-conformal 90% interval (``interval_halfwidth`` volatilities on
either side, set after calibration) baked in: ``forecast = [point, lower, upper]``.
"""

# No ``from __future__ import annotations``: torch.jit.script reads the class annotations and
# cannot resolve them as strings.
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trademaster.training.determinism import torch_threads

log = logging.getLogger(__name__)

# Realised volatility never drops below this (a flat window would otherwise divide by zero).
VOLATILITY_FLOOR = 1e-5
# Standardised inputs are clipped here: one absurd bar cannot saturate the LSTM.
INPUT_CLIP = 8.0


def realised_volatility(returns: torch.Tensor, floor: float) -> torch.Tensor:
    """``[batch, 1]`` root mean square of a window's log returns (``[batch, window]``)."""
    return torch.sqrt(torch.mean(returns * returns, dim=1, keepdim=True) + floor * floor)


class PriceLSTM(nn.Module):
    """Raw window ``[batch, W, F]`` -> ``[batch, 3]`` (point, lower, upper) in log-return units.

    The head starts at zero, so an untrained model forecasts exactly the zero-return baseline.
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    volatility_scaled: torch.Tensor
    interval_halfwidth: torch.Tensor

    def __init__(
        self,
        feature_mean: np.ndarray,
        feature_std: np.ndarray,
        volatility_scaled: tuple[bool, ...],
        hidden: int = 32,
        volatility_floor: float = VOLATILITY_FLOOR,
        input_clip: float = INPUT_CLIP,
    ) -> None:
        super().__init__()
        n_features = len(volatility_scaled)
        if len(feature_mean) != n_features or len(feature_std) != n_features:
            raise ValueError("feature_mean, feature_std and volatility_scaled differ in length")
        self.register_buffer("feature_mean", torch.as_tensor(feature_mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.as_tensor(feature_std, dtype=torch.float32))
        self.register_buffer(
            "volatility_scaled", torch.tensor(volatility_scaled, dtype=torch.float32)
        )
        self.register_buffer("interval_halfwidth", torch.zeros((), dtype=torch.float32))
        self.volatility_floor = float(volatility_floor)
        self.input_clip = float(input_clip)
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def volatility_normalised(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(window with return-like features divided by its volatility, volatility [B, 1])."""
        volatility = realised_volatility(window[:, :, 0], self.volatility_floor)
        scale = self.volatility_scaled * volatility.unsqueeze(2) + (1.0 - self.volatility_scaled)
        return window / scale, volatility

    def normalised_forecast(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(next return in volatility units [B, 1], volatility [B, 1])."""
        scaled, volatility = self.volatility_normalised(window)
        standardised = (scaled - self.feature_mean) / self.feature_std
        clipped = torch.clamp(standardised, -self.input_clip, self.input_clip)
        sequence, _ = self.lstm(clipped)
        return self.head(sequence[:, -1, :]), volatility

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        normalised, volatility = self.normalised_forecast(window)
        point = normalised * volatility
        halfwidth = self.interval_halfwidth * volatility
        return torch.cat([point, point - halfwidth, point + halfwidth], dim=1)

    def set_interval(self, halfwidth: float) -> None:
        """Bakes the calibrated interval half-width (in volatility units) into the module."""
        if not np.isfinite(halfwidth) or halfwidth < 0:
            raise ValueError(f"interval half-width must be finite and >= 0, got {halfwidth}")
        self.interval_halfwidth.fill_(float(halfwidth))


@dataclass(frozen=True)
class PriceTrainingConfig:
    hidden: int = 32
    epochs: int = 10
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-3
    # Stop after this many epochs without an inner-validation improvement.
    patience: int = 3
    # The kept model has trained at least this many epochs; 0 lets the untrained model (the
    # zero forecast) win when no epoch beats it on inner validation.
    min_epochs: int = 0
    # Training targets are clipped at this many volatilities (fat tails; evaluation is not).
    target_clip: float = 6.0
    seed: int = 7
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.min_epochs <= self.epochs:
            raise ValueError(
                f"need 0 <= min_epochs <= epochs, got {self.min_epochs}, {self.epochs}"
            )


def scaling_statistics(
    windows: np.ndarray, volatility_scaled: tuple[bool, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of the volatility-normalised training windows."""
    probe = PriceLSTM(
        np.zeros(len(volatility_scaled)), np.ones(len(volatility_scaled)), volatility_scaled
    )
    with torch.no_grad():
        scaled, _ = probe.volatility_normalised(torch.from_numpy(windows))
    flat = scaled.reshape(-1, scaled.shape[-1]).double()
    return flat.mean(dim=0).numpy(), flat.std(dim=0).numpy() + 1e-6


def fit_price_model(
    train_windows: np.ndarray,
    train_targets: np.ndarray,
    valid_windows: np.ndarray,
    valid_targets: np.ndarray,
    volatility_scaled: tuple[bool, ...],
    config: PriceTrainingConfig,
) -> tuple[PriceLSTM, dict[str, float]]:
    """Trains on ``train_*``, keeping the epoch with the best inner-validation loss.

    Epoch 0 is the untrained model, whose forecast is exactly zero: if no epoch beats the
    zero-return forecast on the inner validation windows, that is what comes back.
    """
    with torch_threads(config.threads):
        torch.manual_seed(config.seed)
        mean, std = scaling_statistics(train_windows, volatility_scaled)
        model = PriceLSTM(mean, std, volatility_scaled, hidden=config.hidden)
        return _train(model, train_windows, train_targets, valid_windows, valid_targets, config)


def _normalised_loss(
    model: PriceLSTM, windows: torch.Tensor, targets: torch.Tensor, clip: float
) -> torch.Tensor:
    forecast, volatility = model.normalised_forecast(windows)
    goal = torch.clamp(targets[:, None] / volatility, -clip, clip)
    return torch.mean((forecast - goal) ** 2)


def _validation_loss(model: PriceLSTM, x: torch.Tensor, y: torch.Tensor, clip: float) -> float:
    model.eval()
    with torch.no_grad():
        return float(_normalised_loss(model, x, y, clip))


def _train(
    model: PriceLSTM,
    train_windows: np.ndarray,
    train_targets: np.ndarray,
    valid_windows: np.ndarray,
    valid_targets: np.ndarray,
    config: PriceTrainingConfig,
) -> tuple[PriceLSTM, dict[str, float]]:
    x, y = torch.from_numpy(train_windows), torch.from_numpy(train_targets)
    vx, vy = torch.from_numpy(valid_windows), torch.from_numpy(valid_targets)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    zero_loss = _validation_loss(model, vx, vy, config.target_clip)
    best_loss = zero_loss if config.min_epochs == 0 else float("inf")
    best_epoch, best_trained_loss = 0, float("inf")
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad()
            _normalised_loss(model, x[batch], y[batch], config.target_clip).backward()
            optimiser.step()
        loss = _validation_loss(model, vx, vy, config.target_clip)
        best_trained_loss = min(best_trained_loss, loss)
        if epoch >= config.min_epochs and loss < best_loss:
            best_loss, best_epoch = loss, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - max(best_epoch, config.min_epochs) >= config.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    log.info(
        "inner validation MSE (volatility units): best %.5f at epoch %d, zero forecast %.5f",
        best_loss,
        best_epoch,
        zero_loss,
    )
    return model, {
        "best_epoch": float(best_epoch),
        "inner_validation_mse_z": best_loss,
        "inner_validation_zero_mse_z": zero_loss,
        # The best epoch of actual training, even when it lost to the zero forecast.
        "inner_validation_best_trained_mse_z": best_trained_loss,
        "train_windows": float(len(x)),
        "inner_validation_windows": float(len(vx)),
    }


def predict(model: nn.Module, windows: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """``[n, 3]`` forecasts (point, lower, upper) for raw windows ``[n, W, F]``."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch_size]))
            outputs.append(model(chunk).numpy())
    if not outputs:
        return np.empty((0, 3), np.float32)
    return np.concatenate(outputs)


def window_volatility(windows: np.ndarray, floor: float = VOLATILITY_FLOOR) -> np.ndarray:
    """``[n]`` realised volatility of each window, exactly as the module computes it."""
    with torch.no_grad():
        returns = torch.from_numpy(np.ascontiguousarray(windows[:, :, 0]))
        return realised_volatility(returns, floor).numpy()[:, 0]
