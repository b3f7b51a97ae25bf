"""risk-assessment-model: P(a new position suffers a large levered loss within its horizon).

``labels`` (outcomes after the trade), ``dataset`` (point-in-time training rows from Feast),
``model`` (the shared wide-and-deep network, fitted), ``pipeline`` (training, evaluation
against baselines and the champion, the promotion rule). Exporter: ``exporters/risk.py``.
"""
