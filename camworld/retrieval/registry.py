"""The retrieval registry and front door: ``retrieve(name, ...)``, ``STRATEGIES`` and the
``@strategy(name)`` decorator that validates inputs and enforces the contract for every strategy.

Every strategy is a function

    fn(mem_poses (M, 3), mem_times (M,), target_poses (T, 3), k, rng, **params) -> int64 (<= k,)

returning unique memory indices, sorted by time (oldest first), that ALWAYS include the newest
frame (argmax of ``mem_times``; the first such index on ties), as the paper does at inference
(§3.3). The strategies themselves live in ``strategies.py`` and ``coverage.py``; they import this
module, never the other way round.

Letters: M memory frames, T target frames.
"""

from __future__ import annotations

import functools

import numpy as np

STRATEGIES: dict = {}


class _Query:
    """Validated inputs of one retrieval call."""

    __slots__ = ("poses", "times", "targets", "k", "rng", "newest")

    def __init__(self, poses, times, targets, k, rng, newest):
        self.poses, self.times, self.targets, self.k, self.rng, self.newest = poses, times, targets, k, rng, newest

    @property
    def M(self) -> int:
        return len(self.poses)


def _validate(mem_poses, mem_times, target_poses, k, rng):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int >= 1 (the newest frame plus k - 1 retrieved), got {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1 (the newest frame plus k - 1 retrieved), got {k}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    P = np.asarray(mem_poses, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 3:
        if P.size == 0:
            P = P.reshape(0, 3)
        else:
            raise ValueError(f"mem_poses must be (M, 3) planar poses (x, y, yaw), got shape {P.shape}")
    t = np.asarray(mem_times, dtype=np.float64).reshape(-1)
    if t.shape != (len(P),):
        raise ValueError(f"mem_times must be (M,) = ({len(P)},) to match mem_poses, got shape {np.shape(mem_times)}")
    T = np.asarray(target_poses, dtype=np.float64)
    if T.ndim == 1 and T.shape == (3,):
        T = T[None]
    if T.ndim != 2 or T.shape[1] != 3 or len(T) == 0:
        raise ValueError(f"target_poses must be (T >= 1, 3) planar poses, got shape {np.shape(target_poses)}")
    if not np.isfinite(T).all():
        raise ValueError("target_poses contain NaN or inf: every (x, y, yaw) must be finite")
    if len(P):
        # NaN/inf propagate through a sum, ~2x cheaper than isfinite().all() at 1e6 frames (a BLAS
        # dot would be cheaper still but stalls on threads when the cores are busy); only when the
        # sum is not finite do we look for the offending rows
        if not np.isfinite(np.add.reduce(P, axis=None)) and not np.isfinite(P).all():
            bad = np.flatnonzero(~np.isfinite(P).all(1))
            raise ValueError(f"mem_poses contain NaN or inf at rows {bad[:5].tolist()}: "
                             "every (x, y, yaw) must be finite")
        if not np.isfinite(t.sum()):
            bad = np.flatnonzero(~np.isfinite(t))
            raise ValueError(f"mem_times contain NaN or inf at rows {bad[:5].tolist()}")
    newest = int(np.argmax(t)) if len(t) else -1
    return _Query(P, t, T, int(k), rng, newest)


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
        def fn(mem_poses, mem_times, target_poses, k, rng, **params):
            q = _validate(mem_poses, mem_times, target_poses, k, rng)
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
             **params) -> np.ndarray:
    """Select at most k context frames from memory for a target segment (paper §3.3, Algorithm 2).

    Args:
        strategy: a name in ``STRATEGIES``.
        mem_poses: (M, 3) planar poses (x, y, yaw) of the memory frames, metres / radians.
        mem_times: (M,) their timestamps (any increasing clock); the newest is argmax.
        target_poses: (T, 3) poses of the frames to generate.
        k: context size (the newest frame plus k - 1 retrieved), >= 1.
        rng: randomness of the random strategies (same seed, same result).
        **params: the strategy's own parameters (see its docstring).

    Returns:
        int64 (<= k,) unique memory indices sorted by time, always including the newest frame.
    """
    fn = STRATEGIES.get(strategy)
    if fn is None:
        raise ValueError(f"unknown retrieval strategy {strategy!r}; choose from {sorted(STRATEGIES)}")
    return fn(mem_poses, mem_times, target_poses, k, rng, **params)
