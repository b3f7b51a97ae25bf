"""The serving agent: one per Triton replica, it keeps that Triton on the served versions of
the manifest (``trademaster.contract.served_versions``) and heals models that stop answering."""
