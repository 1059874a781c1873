"""``coverage``: greedy view-coverage retrieval from poses alone (ours; beyond paper §3.3).

The paper's FOV rule answers "does this frame overlap the target at all?" and then picks among the
candidates at random. Here we ask "which k - 1 frames *together* see most of what the target
cameras will see?":

1. A fixed quasi-random pattern of ``n_points`` points (an R2 low-discrepancy sequence, the same
   for every call) is laid in each target camera's view fan: bearing uniform across the horizontal
   FOV (as image columns are), z-depth log-uniform in ``[min_dist, max_dist]`` metres (near ground
   and walls fill more pixels than far ones).
2. A memory frame *covers* a point when the point lies in its view fan: in front, within
   ``mem_max_dist`` metres of z-depth, and inside the horizontal FOV. This is a boolean matrix
   (memory x points), computed in chunks with three small matrix products; memory is first cut to
   the frames that can cover anything (distance and bearing to the points' bounding circle), and
   frames with identical coverage are merged into their newest.
3. Greedy maximum coverage (the (1 - 1/e) approximation of the submodular set cover): start from
   what the newest frame (always in context) covers, then repeatedly add the frame with the largest
   ``new points - age_penalty * age * all points``, age in [0, 1] relative to the memory's time
   span (WorldMem-style recency preference, arXiv 2504.12369). When nothing new can be covered,
   the same greedy runs again for points seen fewer than 2, ... ``levels`` times, until k - 1
   frames or nothing left to gain. Each pick suppresses the frames with nearly its pose, so
   repeated coverage comes from other viewpoints.

Like ``fov``, it cannot see occlusion; unlike ``fov`` it prefers frames that see *different* parts
of the target view, so it is redundancy-aware by construction.

6-DoF poses (extrinsics, ``registry.py``): the points fill each target *frustum* (``frustum.py``'s
pattern, ``min_dist`` to ``max_dist`` deep), a memory camera covers the points inside its frustum
(``aspect`` sets the vertical FOV), and the suppression compares camera centres and optical axes.
With the memory's ``index``, only frames whose view can reach the points are read; the result is
the same.

Letters: M memory, S survivors of the prefilter, U unique coverage rows, P points (T * n_points).
"""

from __future__ import annotations

import numpy as np

from camworld import geometry
from camworld.retrieval import frustum
from camworld.retrieval.fov import prefilter
from camworld.retrieval.registry import _Query, strategy
from camworld.retrieval.strategies import _fill

_R2 = 1.32471795724474602596  # plastic number: the R2 sequence's generator


def fan_points(n_points: int, hfov_deg: float, min_dist: float, max_dist: float) -> np.ndarray:
    """The fixed sample pattern in a camera's own planar frame: (n_points, 2) as (forward, left) metres."""
    i = np.arange(n_points, dtype=np.float64)
    u = (0.5 + i / _R2) % 1.0
    v = (0.5 + i / _R2 ** 2) % 1.0
    half = np.deg2rad(hfov_deg) / 2.0
    z = min_dist * (max_dist / min_dist) ** v                 # log-uniform z-depth
    lateral = z * np.tan((2.0 * u - 1.0) * half)              # bearing uniform over the FOV
    return np.stack([z, lateral], -1)


def target_points(targets: np.ndarray, n_points: int, hfov_deg: float, min_dist: float, max_dist: float):
    """World XY of the pattern in every target camera's fan: (T * n_points, 2)."""
    local = fan_points(n_points, hfov_deg, min_dist, max_dist)           # (n, 2)
    c, s = np.cos(targets[:, 2]), np.sin(targets[:, 2])                   # (T,)
    fwd = np.stack([c, s], -1)[:, None]                                   # (T, 1, 2)
    left = np.stack([-s, c], -1)[:, None]
    pts = targets[:, None, :2] + local[None, :, :1] * fwd + local[None, :, 1:] * left   # (T, n, 2)
    return pts.reshape(-1, 2)


def covers(poses: np.ndarray, points: np.ndarray, hfov_deg: float, max_dist: float,
           chunk: int = 8192) -> np.ndarray:
    """Point-in-fan test: bool (S, P), True where memory camera s sees point p (z-depth <= max_dist).

    forward = (p - o) . f and lateral = (p - o) . l are affine in p: a * px + b * py + c, evaluated
    by broadcasting in float32 on coordinates centred at the points' mean. (Not a BLAS matmul: on
    busy shared cores its worker threads stall for milliseconds.)
    """
    centre = points.mean(0)
    px, py = (points - centre).astype(np.float32).T                                 # (P,), (P,)
    o = poses[:, :2] - centre
    c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
    Wf = np.stack([c, s, -(o[:, 0] * c + o[:, 1] * s)], -1).astype(np.float32)    # (S, 3)
    Wl = np.stack([-s, c, -(-o[:, 0] * s + o[:, 1] * c)], -1).astype(np.float32)
    tan_half = np.float32(np.tan(np.deg2rad(hfov_deg) / 2.0))
    out = np.empty((len(poses), len(points)), bool)
    for j in range(0, len(poses), chunk):
        wf, wl = Wf[j:j + chunk, :, None], Wl[j:j + chunk, :, None]                 # (chunk, 3, 1)
        F = wf[:, 0] * px + wf[:, 1] * py + wf[:, 2]                                # (chunk, P) forward
        L = wl[:, 0] * px + wl[:, 1] * py + wl[:, 2]                                # (chunk, P) lateral
        np.abs(L, out=L)
        out[j:j + chunk] = (F > 0.05) & (F <= max_dist) & (L <= tan_half * F)
    return out


def _can_see_disc(poses: np.ndarray, centre: np.ndarray, radius: float, hfov_deg: float) -> np.ndarray:
    """Cheap superset test: can a camera's fan reach a disc at all? (by bearing to the disc) -> bool (S,)."""
    d = centre - poses[:, :2]
    dist = np.hypot(d[:, 0], d[:, 1])
    bearing = np.abs(geometry.wrap_angle(np.arctan2(d[:, 1], d[:, 0]) - poses[:, 2]))
    slack = np.arcsin(np.clip(radius / np.maximum(dist, 1e-9), 0.0, 1.0))
    return (dist <= radius) | (bearing <= np.deg2rad(hfov_deg) / 2.0 + slack)


def _planar_pool(q: _Query, pts: np.ndarray, reach: float, hfov_deg: float):
    """Planar memory frames that can cover any of the points pts (P, 2): (S,) increasing, and their test."""
    centre = pts.mean(0)
    radius = float(np.sqrt(((pts - centre) ** 2).sum(1).max()))
    if q.index is None:
        sub = prefilter(q.poses, centre[None], radius + reach)                        # (S,)
    else:
        from camworld.retrieval.index import cone_superset

        sub = cone_superset(q.index, q.pos, centre[None], np.array([radius]), radius + reach, centre[None],
                            np.deg2rad(hfov_deg) / 2.0, pitched=False)
        sub = sub[prefilter(q.poses[sub], centre[None], radius + reach)]              # row by row, as above
    sub = sub[_can_see_disc(q.poses[sub], centre, radius, hfov_deg)]
    return sub, lambda idx: covers(q.poses[idx], pts, hfov_deg, reach)


def _frustum_pool(q: _Query, pts: np.ndarray, reach: float, hfov_deg: float, aspect: float):
    """6-DoF memory frames that can cover any of the points pts (P, 3), and their test."""
    centre = pts.mean(0)
    radius = float(np.sqrt(((pts - centre) ** 2).sum(1).max()))
    fp = frustum.FrustumParams(hfov_deg=hfov_deg, aspect=aspect).check()
    cone = fp.half_angle + frustum._F32_SLACK
    pos = q.pos
    if q.index is None:
        sub = np.flatnonzero(((pos - centre) ** 2).sum(1) <= (radius + reach) ** 2)
    else:
        from camworld.retrieval.index import cone_superset

        sub = cone_superset(q.index, pos, centre[None, :2], np.array([radius]), radius + reach, centre[None, :2], cone,
                            pitched=True)
        sub = sub[((pos[sub] - centre) ** 2).sum(1) <= (radius + reach) ** 2]
    sub = sub[frustum._cone_reaches(q.ext[sub], centre[None], np.array([radius]), cone)]
    return sub, lambda idx: frustum.sees(q.ext[idx], pts, hfov_deg, aspect, reach)


def _similar(q: _Query, sub: np.ndarray, j: int, nms_dist: float, nms_deg: float) -> np.ndarray:
    """Frames of sub with nearly the pose of frame j (position within nms_dist, view within nms_deg)."""
    if q.sixdof:
        near = ((q.pos[sub] - q.pos[j]) ** 2).sum(1) <= nms_dist ** 2
        return near & ((q.ext[sub, :, 2] * q.ext[j, :, 2]).sum(1) >= np.cos(np.deg2rad(nms_deg)))
    return (np.hypot(*(q.poses[sub, :2] - q.poses[j, :2]).T) <= nms_dist) & (
        np.abs(geometry.wrap_angle(q.poses[sub, 2] - q.poses[j, 2])) <= np.deg2rad(nms_deg))


@strategy("coverage")
def coverage(q: _Query, n_points: int = 64, min_dist: float = 0.5, max_dist: float = 20.0,
             mem_max_dist: float | None = None, levels: int = 8, age_penalty: float = 0.02,
             nms_dist: float = 0.5, nms_deg: float = 15.0, max_candidates: int = 16384,
             fill: str = "none", hfov_deg: float = geometry.DEFAULT_HFOV_DEG, aspect: float = 1.0):
    """Greedy view coverage of the target fans (see module doc).

    Params: ``n_points`` per target frame; ``min_dist``/``max_dist`` metres of the target fan;
    ``mem_max_dist`` metres a memory camera sees (default ``max_dist``); ``levels``: once every
    coverable point is seen once, keep adding frames that see points a second, ... time, up to
    this many (a point seen twice survives one wrong guess about occlusion); ``age_penalty``
    (fraction of all points an age of the whole memory span costs); ``fill`` (as the FOV
    strategies; "candidates" is "none" here); ``nms_dist`` metres / ``nms_deg`` degrees: a pick
    suppresses frames with nearly its pose (non-maximum suppression, so the higher levels add
    other viewpoints, not near-copies); ``max_candidates``: in a dense memory (every spot seen
    from every side many times) at most this many frames, drawn at random with ``rng``, enter the
    coverage test, which bounds its cost; ``hfov_deg``; ``aspect`` (frame width / height, 6-DoF only).
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    if not 0.0 < min_dist < max_dist:
        raise ValueError(f"need 0 < min_dist < max_dist (metres), got {min_dist}, {max_dist}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    reach = max_dist if mem_max_dist is None else float(mem_max_dist)
    if q.sixdof:
        fp = frustum.FrustumParams(hfov_deg=hfov_deg, aspect=aspect, near=min_dist, far=max_dist,
                                   n_points=n_points).check()
        pts = frustum.target_points(q.targets, fp).reshape(-1, 3)                      # (P, 3)
        sub, see = _frustum_pool(q, pts, reach, hfov_deg, aspect)
    else:
        pts = target_points(q.targets, n_points, hfov_deg, min_dist, max_dist)       # (P, 2)
        sub, see = _planar_pool(q, pts, reach, hfov_deg)
    sub = sub[sub != q.newest]
    if len(sub) > max_candidates:
        sub = np.sort(q.rng.choice(sub, size=max_candidates, replace=False))
    if len(sub) == 0:
        return _fill(q, np.zeros(0, np.int64), fill)
    count = see(np.array([q.newest]))[0].astype(np.float32)                           # (P,) times seen
    cov = see(sub)                                                                    # (S, P)
    useful = cov.any(1)
    sub, cov = sub[useful], cov[useful]
    if len(sub) == 0:
        return _fill(q, np.zeros(0, np.int64), fill)
    # identical coverage rows: keep the newest
    order = np.lexsort((-sub, -q.times[sub]))
    sub, cov = sub[order], cov[order]
    packed = np.ascontiguousarray(np.packbits(cov, axis=1))
    _, first = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True)
    first = np.sort(first)
    sub, covf = sub[first], cov[first].astype(np.float32)                            # (U,), (U, P)
    span = max(float(q.times[q.newest] - q.times.min()), 1e-12)
    penalty = age_penalty * (q.times[q.newest] - q.times[sub]) / span * len(pts)     # in points
    taken = np.zeros(len(sub), bool)
    picked, level = [], 1
    while len(picked) < q.k - 1:
        gain = np.einsum("up,p->u", covf, (count < level).astype(np.float32))        # (U,) points still short
        score = np.where((gain > 0) & ~taken, gain - penalty, -np.inf)
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            if level >= levels:
                break
            level += 1
            continue
        picked.append(sub[j])
        taken |= _similar(q, sub, int(sub[j]), nms_dist, nms_deg)
        taken[j] = True
        count += covf[j]
    return _fill(q, np.asarray(picked, np.int64), fill)
