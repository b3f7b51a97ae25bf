"""sentiment-analyzer: news headline -> sentiment class and score in [-1, 1].

``data`` (headlines from the warehouse, splits), ``encoder`` (the frozen all-MiniLM-L6-v2),
``model`` (the trained head), ``evaluation`` (metrics, baselines), ``pipeline`` (training,
the promotion rule, scoring headlines for the market features). Exporter:
``exporters/sentiment.py`` (a Triton ensemble: tokenizer, encoder, head).
"""
