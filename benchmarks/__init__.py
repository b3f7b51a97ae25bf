"""Benchmarks: measured side by side with a baseline in the same run; never part of the tests."""
