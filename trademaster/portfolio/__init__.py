"""portfolio-optimizer: mean-variance weights for a user's holdings (pure numpy solver).

``optimizer`` is the served algorithm (numpy only; copied next to Triton's ``model.py``),
``covariance`` estimates the covariance from recent returns, ``problems`` and ``reference``
(scipy) validate the solver, ``pyfunc`` registers it in MLflow.
"""

from trademaster.portfolio.covariance import covariance_from_returns, ledoit_wolf_shrinkage
from trademaster.portfolio.optimizer import PortfolioProblemError, Solution, solve_portfolio

__all__ = [
    "PortfolioProblemError",
    "Solution",
    "covariance_from_returns",
    "ledoit_wolf_shrinkage",
    "solve_portfolio",
]
