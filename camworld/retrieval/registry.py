"""The retrieval registry and front door: ``retrieve(name, ...)``, ``STRATEGIES`` and the
``@strategy(name)`` decorator that validates inputs and enforces the contract for every strategy.

Every strategy is a function

    fn(mem_poses, mem_times (M,), target_poses, k, rng, index=None, **params) -> int64 (<= k,)

returning unique memory indices, sorted by time (oldest first), that ALWAYS include the newest
frame (argmax of ``mem_times``; the first such index on ties), as the paper does at inference
(§3.3). The strategies themselves live in ``strategies.py`` and ``coverage.py``; they import this
module, never the other way round.

Poses, planar or 6-DoF, one entry point. ``mem_poses`` and ``target_poses`` are planar poses
(M, 3) / (T, 3) as ``(x, y, yaw)``, or camera-to-world extrinsics (M, 3, 4) / (M, 4, 4) (OpenCV
axes, ``geometry``). Planar on both sides: the paper's planar FOV rule (``fov.py``). Extrinsics on
either side: the 6-DoF frustum rule (``frustum.py``); the planar side is lifted with
``geometry.planar_to_extrinsics`` (camera at ``CAMERA_HEIGHT``). The pose-free baselines ignore the
difference. The shape decides, so one call site serves both and the strategies' selection code
(runs, far frames, filling) is shared.

``index``: the memory's ``PoseGrid`` (``MemoryBank.index``). The FOV strategies and ``coverage`` then
read only nearby frames facing the right way (``index.py``) and return exactly what the exhaustive
search returns. The memory's poses are then not scanned for NaN again (the bank checked them on
append); the index must cover exactly these M frames (checked, with a spot check of a few rows).

Letters: M memory frames, T target frames.
"""

from __future__ import annotations

import functools
import weakref

import numpy as np

from camworld import geometry
from camworld.memory import PoseGrid

STRATEGIES: dict = {}
# Below this many frames the exhaustive search (an O(M) prefilter that is cheap at this size, then the
# exact rule) costs no more than asking the index; the answers are the same.
INDEX_MIN_FRAMES = 8192


class _Query:
    """Validated inputs of one retrieval call.

    ``ext``: extrinsics (M, 3, 4) for a 6-DoF query (given, or lifted from planar poses), None for a
    planar one; ``poses``: the planar poses (M, 3) when given (None for 6-DoF memory); ``targets``:
    (T, 3) planar or (T, 3, 4) extrinsics, matching ``ext``.
    """

    __slots__ = ("poses", "ext", "times", "targets", "k", "rng", "newest", "_index", "_checked")

    def __init__(self, poses, times, targets, k, rng, newest, ext=None, index=None):
        self.poses, self.times, self.targets, self.k, self.rng, self.newest = poses, times, targets, k, rng, newest
        self.ext, self._index, self._checked = ext, index, index is None

    @property
    def index(self):
        """The memory's PoseGrid or None; checked against the poses when a strategy first asks for it, and
        None (the exhaustive path, same answers) for a memory too small to gain from it."""
        if self.M < INDEX_MIN_FRAMES:
            return None
        if not self._checked:
            _check_index(self._index, self.poses, self.ext, self.M)
            self._checked = True
        return self._index

    @property
    def M(self) -> int:
        return len(self.times)

    @property
    def sixdof(self) -> bool:
        return self.ext is not None

    @property
    def pos(self) -> np.ndarray:
        """Camera positions: (M, 2) ground positions (planar) or (M, 3) centres (6-DoF), a view."""
        return self.ext[:, :, 3] if self.ext is not None else self.poses[:, :2]


def _is_full(shape) -> bool:
    return len(shape) >= 2 and tuple(shape[-2:]) in ((3, 4), (4, 4))


def _memory(mem_poses, trusted: bool):
    """-> (planar (M, 3) or None, extrinsics (M, 3, 4) or None), validated unless ``trusted``."""
    shape = np.shape(mem_poses)
    if _is_full(shape) and len(shape) == 3:
        E = np.asarray(mem_poses, dtype=np.float64)
        if not trusted:
            return None, geometry.as_extrinsics(E, "mem_poses")
        return None, E[:, :3, :]
    P = np.asarray(mem_poses, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 3:
        if P.size == 0:
            return P.reshape(0, 3), None
        raise ValueError(f"mem_poses must be (M, 3) planar poses (x, y, yaw) or (M, 3, 4) / (M, 4, 4) camera-to-world "
                         f"extrinsics, got shape {P.shape}")
    # NaN/inf propagate through a sum, ~2x cheaper than isfinite().all() at 1e6 frames (a BLAS dot would
    # be cheaper still but stalls on threads when the cores are busy); only when the sum is not finite
    # do we look for the offending rows
    if not trusted and len(P) and not np.isfinite(np.add.reduce(P, axis=None)) and not np.isfinite(P).all():
        bad = np.flatnonzero(~np.isfinite(P).all(1))
        raise ValueError(f"mem_poses contain NaN or inf at rows {bad[:5].tolist()}: every (x, y, yaw) must be finite")
    return P, None


def _targets(target_poses):
    """-> (T, 3) planar or (T, 3, 4) extrinsics, validated."""
    shape = np.shape(target_poses)
    if _is_full(shape):
        E = geometry.as_extrinsics(target_poses, "target_poses").reshape(-1, 3, 4)
        if len(E) == 0:
            raise ValueError(f"target_poses must hold T >= 1 poses, got shape {shape}")
        return E
    T = np.asarray(target_poses, dtype=np.float64)
    if T.ndim == 1 and T.shape == (3,):
        T = T[None]
    if T.ndim != 2 or T.shape[1] != 3 or len(T) == 0:
        raise ValueError(f"target_poses must be (T >= 1, 3) planar poses or (T, 3, 4) extrinsics, got shape {shape}")
    if not np.isfinite(T).all():
        raise ValueError("target_poses contain NaN or inf: every (x, y, yaw) must be finite")
    return T


# The last spot check that passed, per index: (n, rows, their poses). An index only appends, so while it holds
# the same n frames and those rows hold the same poses, the check gives the same answer (not re-run: ~0.15 ms
# of bisection per query at 1e6 frames, against a ~2 us comparison of 9 rows).
_PASSED: "weakref.WeakKeyDictionary[PoseGrid, tuple]" = weakref.WeakKeyDictionary()


def _check_index(index, P, E, M: int):
    if index.n != M:
        raise ValueError(f"index covers {index.n} frames but mem_poses has {M}: pass the index of the same MemoryBank "
                         "(bank.index), read after its last append")
    if M == 0:
        return
    rows = np.unique(np.linspace(0, M - 1, 9).astype(np.int64))          # spot check: the poses it was built on?
    seen = (P if P is not None else E).take(rows, 0)
    last = _PASSED.get(index)
    if last is not None and last[0] == M and last[1].shape == seen.shape and np.array_equal(last[1], seen):
        return
    _spot_check(index, P, E, rows)
    _PASSED[index] = (M, seen)


def _spot_check(index, P, E, rows):
    if P is None:          # 6-DoF: the bank filed each frame by its derived planar pose and steepness
        xyw = geometry.extrinsics_to_planar(E[rows])
        ok = index.holds(rows, index.keys_of(xyw[:, :2], xyw[:, 2], np.abs(E[rows, 2, 2]) > PoseGrid.STEEP_SIN))
    else:                  # planar: a steep 6-DoF frame of the bank sits in the steep bin
        xyw = P[rows]
        ok = index.holds(rows, index.keys_of(xyw[:, :2], xyw[:, 2]))
        if index.n_steep and not ok.all():                       # no steep frame: none sits in the steep bin
            ok |= index.holds(rows, index.keys_of(xyw[:, :2], xyw[:, 2], np.ones(len(rows), bool)))
    if not ok.all():
        raise ValueError(f"index does not match mem_poses (frames {rows[~ok][:3].tolist()} are filed elsewhere): "
                         "pass the index of the MemoryBank these poses come from")


def _validate(mem_poses, mem_times, target_poses, k, rng, index=None):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int >= 1 (the newest frame plus k - 1 retrieved), got {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1 (the newest frame plus k - 1 retrieved), got {k}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    P, E = _memory(mem_poses, trusted=index is not None)
    M = len(P) if P is not None else len(E)
    t = np.asarray(mem_times, dtype=np.float64).reshape(-1)
    if t.shape != (M,):
        raise ValueError(f"mem_times must be (M,) = ({M},) to match mem_poses, got shape {np.shape(mem_times)}")
    T = _targets(target_poses)
    if index is not None and not isinstance(index, PoseGrid):
        raise ValueError(f"index must be the memory's camworld.memory.PoseGrid (MemoryBank.index), got "
                         f"{type(index).__name__}")
    newest = int(np.argmax(t)) if M else -1
    # argmax lands on the first NaN or on +inf if there is one, so with an index (a bank's times, checked
    # on append) that one element says it; without one, a sum (~0.5 ms at 1e6 frames) catches -inf too
    if M and not (np.isfinite(t[newest]) if index is not None else np.isfinite(t.sum())):
        bad = np.flatnonzero(~np.isfinite(t))
        raise ValueError(f"mem_times contain NaN or inf at rows {bad[:5].tolist()}")
    if E is not None and T.ndim == 2:
        T = geometry.planar_to_extrinsics(T)                  # 6-DoF memory: the targets are lifted
    elif E is None and T.ndim == 3:
        E = geometry.planar_to_extrinsics(P)                  # 6-DoF targets: the memory is lifted (O(M))
    return _Query(P, t, T, int(k), rng, newest, ext=E, index=index)


def _finish(q: _Query, picked) -> np.ndarray:
    """newest + picked -> unique, at most k, sorted by (time, index)."""
    idx = np.unique(np.concatenate([np.asarray(picked, np.int64).reshape(-1), [q.newest]]))
    if len(idx) > q.k:  # strategies pick at most k - 1 others, so this only guards against misuse
        raise RuntimeError(f"strategy returned {len(idx)} > k={q.k} frames")
    return idx[np.lexsort((idx, q.times[idx]))]


def strategy(name: str):
    """Register ``pick(q, **params) -> indices`` (excluding or including the newest) under ``name``."""

    def deco(pick):
        @functools.wraps(pick)
        def fn(mem_poses, mem_times, target_poses, k, rng, index=None, **params):
            q = _validate(mem_poses, mem_times, target_poses, k, rng, index)
            if q.M == 0:
                return np.zeros(0, np.int64)
            if q.k == 1 or q.M == 1:
                return np.array([q.newest], np.int64)
            return _finish(q, pick(q, **params))

        fn.__name__ = fn.__qualname__ = "strategy_" + name.replace("+", "_")
        STRATEGIES[name] = fn
        return fn

    return deco


def retrieve(strategy: str, mem_poses, mem_times, target_poses, k: int, rng: np.random.Generator,
             index=None, **params) -> np.ndarray:
    """Select at most k context frames from memory for a target segment (paper §3.3, Algorithm 2).

    Args:
        strategy: a name in ``STRATEGIES``.
        mem_poses: (M, 3) planar poses (x, y, yaw) of the memory frames, metres / radians, or (M, 3, 4)
            / (M, 4, 4) camera-to-world extrinsics for 6-DoF retrieval (module doc).
        mem_times: (M,) their timestamps (any increasing clock); the newest is argmax.
        target_poses: (T, 3) planar poses or (T, 3, 4) / (T, 4, 4) extrinsics of the frames to generate.
        k: context size (the newest frame plus k - 1 retrieved), >= 1.
        rng: randomness of the random strategies (same seed, same result).
        index: the memory's ``PoseGrid`` (``MemoryBank.index``) or None; same result, faster.
        **params: the strategy's own parameters (see its docstring).

    Returns:
        int64 (<= k,) unique memory indices sorted by time, always including the newest frame.
    """
    fn = STRATEGIES.get(strategy)
    if fn is None:
        raise ValueError(f"unknown retrieval strategy {strategy!r}; choose from {sorted(STRATEGIES)}")
    return fn(mem_poses, mem_times, target_poses, k, rng, index=index, **params)
