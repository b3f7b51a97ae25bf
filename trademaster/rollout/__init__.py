"""Rollout of new model versions through the running gateway: canary and its analysis."""
