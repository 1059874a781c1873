"""Where a step's time goes: named wall-clock sections, recorded only while a ``Timings`` collects.

    with Timings() as tm:
        env.step(action)
    tm.seconds  # {"retrieval": ..., "context": ..., "denoise": ..., "decode": ...}

The learned world marks its phases with ``section(name)``; outside a ``Timings`` a section costs one
list check. On CUDA a section synchronises the device when it ends (only while collecting), so the
kernels it launched count where they were launched.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

_active: list = []


class Timings:
    """Collects the seconds and calls of every section run while it is entered (nesting allowed)."""

    def __init__(self):
        self.seconds: dict = defaultdict(float)
        self.calls: dict = defaultdict(int)

    def __enter__(self) -> "Timings":
        _active.append(self)
        return self

    def __exit__(self, *exc):
        _active.remove(self)
        return False


def _sync():
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@contextmanager
def section(name: str):
    """Time the enclosed block as ``name`` in every active ``Timings`` (nothing happens when none is)."""
    if not _active:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _sync()
        dt = time.perf_counter() - t0
        for tm in _active:
            tm.seconds[name] += dt
            tm.calls[name] += 1
