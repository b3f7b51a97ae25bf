"""price-prediction-lstm: next-bar log return with a conformal 90% interval.

``dataset`` (labelled windows; the windows themselves are the feature view in
``trademaster.features.price_window``), ``model`` (the LSTM), ``walkforward``, ``backtest``
and ``conformal`` (walk-forward training and calibration), ``evaluation`` (metrics and
baselines), ``pipeline`` (registration and the promotion rule). Exporter:
``exporters/price_lstm.py``; served by ``gateway/tasks/forecast.py``.
"""
