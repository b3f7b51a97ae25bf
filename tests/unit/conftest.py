from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread() -> Iterator[None]:
    """The models trained in unit tests are tiny: thread hand-offs cost more than they save
    (training was several times slower with two threads on a busy two-core machine). Only
    where the module under test uses torch: the gateway's tests never import it."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
