"""Optional compiled kernels (numba) for the indexed planar FOV query (``index.planar_candidates``).

numba is an optional dependency (``pip install camworld[fast]``; the ``dev`` extra has it too). Without
it, or with ``CAMWORLD_NO_NUMBA=1`` in the environment, the index runs its pure-numpy code, with the
same answers. ``kernels()`` imports numba and compiles on first use (``cache=True``: compiled once per
machine into ``__pycache__``; later processes load the cache), so importing camworld never pays for it.

What is compiled, per query:

* ``planar_states``: the cell / heading-bin classification (``index._planar_states``): the same
  geometry, one (cell, target) pair at a time. Its margins (``EPS_ANG``, ``EPS_POS``, ``LINE_GAP``)
  are far above the last-bit differences between numba's and numpy's ``arctan2`` / ``sqrt``, so each
  state is as safe as the numpy path's (a reject bin holds no passing pose, a sure one no failing pose),
  whatever state a border case rounds to.
* ``cells``: the occupied cells near the targets and their boxes (``PoseGrid.occupied`` + ``index._Cells``;
  the same positions and box floats).
* ``gather``: the runs of equal state, their frames in ``grid.order`` (``index._runs``, ``_ranges``).
* ``stale``: which tested frames the edge memo does not hold yet (the trig itself stays in numpy, so the
  memo holds the very floats the exhaustive search computes).
* ``same_run``: ``strategies._same_run`` (which candidates continue a run), the same floats.
* ``rule``: the exact rule (``fov._rule``) over the tested frames x targets: the same float64
  operations in the same order (``error_model="numpy"``, no fastmath, so no reassociation or fused
  multiply-add), the memory edges read from the memo and the target edges computed by numpy, so every
  frame gets bit for bit the answer of the exhaustive search; then the sure frames joined (numpy sorts).
  Without hits, the frames the first target accepts are not tested against the others (compacted).

Tests: ``tests/test_retrieval_kernels.py`` (compiled == numpy == exhaustive).
"""

from __future__ import annotations

import os

import numpy as np

ENV = "CAMWORLD_NO_NUMBA"
_state = {"loaded": False, "k": None, "enabled": True, "error": None}


def _env_disabled() -> bool:
    return os.environ.get(ENV, "").strip() not in ("", "0")


def kernels():
    """The compiled kernels (a namespace), or None: numba missing, ``CAMWORLD_NO_NUMBA`` set, or
    ``set_enabled(False)``. Imports numba (~1 s) and loads / compiles the kernels on the first call."""
    if not _state["enabled"] or _env_disabled():
        return None
    if not _state["loaded"]:
        _state["loaded"] = True
        try:
            _state["k"] = _build()
        except ImportError as e:      # numba not installed: the numpy path
            _state["error"] = repr(e)
    return _state["k"]


def backend() -> str:
    """"numba X.Y.Z" when the compiled kernels run, else "numpy" (for benchmark headers)."""
    k = kernels()
    return f"numba {k.version}" if k is not None else "numpy"


def set_enabled(flag: bool) -> bool:
    """Use (True) or bypass (False) the compiled kernels in this process; returns the previous setting.
    For tests and benchmarks comparing both paths (``CAMWORLD_NO_NUMBA=1`` bypasses them for good)."""
    prev = _state["enabled"]
    _state["enabled"] = bool(flag)
    return prev


def _build():
    import importlib

    nb = importlib.import_module("camworld.retrieval._kernels_nb")    # imports numba (ImportError without it)

    nb.version = nb.numba.__version__
    return nb
