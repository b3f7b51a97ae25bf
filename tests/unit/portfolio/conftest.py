from __future__ import annotations

from collections.abc import Iterator

import pytest

from trademaster.portfolio.validation import single_threaded_blas


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread() -> Iterator[None]:
    """The matrices here are tiny: BLAS threads cost more than they save (the scipy
    comparisons ran several times slower with two threads on a busy two-core machine)."""
    with single_threaded_blas():
        yield
