"""behavioral-pattern-classifier: which trading archetype a user's recent behaviour matches.

``model`` (the shared wide-and-deep network with a softmax), ``pipeline`` (dataset of user
snapshots with their archetype at that time, training, evaluation, the promotion rule).
Exporter: ``exporters/behavior.py``.
"""
