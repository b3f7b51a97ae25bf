"""What every model's training shares: promotion gates, champion/challenger promotion,
metrics and baselines, the tabular network and its fit loop, deterministic torch.

Each model's own dataset, labels, network and rule live in its package
(``trademaster.risk``, ``behavior``, ``price_lstm``, ``sentiment``, ``portfolio``).
"""
