"""Revisits: the scripted excursions of training (turn away and back, walk a line and back) and a long
walk with an excursion every few seconds, which the sim export writes so that recorded-data training sees
the revisits that on-the-fly training builds into its samples (paper Algorithm 1; DESIGN §7).

Both are plain functions of a seeded ``np.random.Generator``.
"""

from __future__ import annotations

import numpy as np

from camworld.sim.trajectories import turn_and_back, walk_and_back


def excursion(scene, start, rng, deg_per_frame=(4.0, 15.0), max_m_per_frame: float = 1.0):
    """A scripted revisit at model frame rate: turn away and back (at ``deg_per_frame``, a (lo, hi)
    range), or walk a line and back (forwards or backwards, at most ``max_m_per_frame``): the path kinds
    ``turn_and_back`` and ``walk_and_back`` of ``camworld.sim.trajectories``.
    Returns (poses (L, 3) palindrome, index where the return half starts)."""
    if rng.random() < 0.6:
        theta = np.deg2rad(rng.uniform(20.0, 180.0)) * (1 if rng.random() < 0.5 else -1)
        poses = turn_and_back(start, theta, float(rng.uniform(*deg_per_frame)))
        return poses, len(poses) // 2 + 1
    for _ in range(4):
        metres, frames = float(rng.uniform(1.0, 3.5)), int(rng.integers(5, 15))
        frames = max(frames, int(np.ceil(metres / max_m_per_frame)))
        poses = walk_and_back(scene, start, metres, frames, backwards=bool(rng.random() < 0.6))
        if poses is not None:
            return poses, len(poses) // 2 + 1
        start = np.array([start[0], start[1], start[2] + rng.uniform(-np.pi, np.pi)])
    poses = turn_and_back(start, np.pi, float(np.clip(10.0, *deg_per_frame)))
    return poses, len(poses) // 2 + 1


def revisit_walk(scene, base, rng, every=(30, 90), deg_per_frame=(4.0, 15.0), max_m_per_frame: float = 1.0):
    """``base`` (N, 3), a walk at model frame rate, with an ``excursion`` from its pose after every
    U(every) frames; the walk then goes on where it was (excursions are palindromes).
    -> poses (M >= N, 3)."""
    base = np.asarray(base, np.float64)
    out, i = [base[:1]], 0
    while i < len(base) - 1:
        j = min(len(base) - 1, i + int(rng.integers(every[0], every[1] + 1)))
        out.append(base[i + 1:j + 1])
        if j < len(base) - 1:
            exc, _ = excursion(scene, base[j], rng, deg_per_frame, max_m_per_frame)
            out.append(exc[1:])
        i = j
    return np.concatenate(out)
