"""The paper's planar FOV-overlap rule (§3.3 "Memory Retrieval", Fig. 4), vectorised over memory.

Every camera is reduced to its two FOV edge rays in the ground plane (``geometry.fov_edge_rays``).
A memory camera *m* overlaps a target camera *t* when

* both ray pairs meet: t's left ray with m's left ray, and t's right ray with m's right ray
  (paper Fig. 4 a, b). A pair *meets* when

  - the rays cross in front of both cameras (both ray parameters > 0) at a distance from the
    target camera in ``[near, far]`` metres (too near: Fig. 4 d; too far: Fig. 4 c), or
  - the rays are (nearly) parallel, pointing the same way (angle < ``parallel_deg``): crossing
    is then ill-conditioned or absent, so we count the pair as meeting when the memory ray lies
    at most ``parallel_offset`` metres to the side of the target ray and its origin at most
    ``far`` metres ahead of the target camera (same-direction fans overlap from a depth of about
    their lateral offset on, since the fan width at depth z is 2 z tan(hfov/2) ~ z);

* or the two cameras nearly share a view: positions within ``same_view_dist`` metres and yaws
  within ``same_view_deg`` degrees. The ray test alone misses these (the rays cross at the camera,
  which the ``near`` limit rejects), yet the frames show nearly the same thing.

The cameras must also be at most ``max_cam_dist`` metres apart (the paper's "cameras too far
apart", §3.3); this bound is what lets :func:`prefilter` drop most of a large memory with one cheap
pass before the ray test.

Known misses, as the paper says (Fig. 4 e, f): cameras facing each other (the left/left pair then
points in opposite directions), and occlusion (walls), which no pose-only rule can see.

Letters: M memory frames, T target frames, S memory frames surviving the prefilter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camworld import geometry

_BLOCK = 131072  # prefilter block (rows)

@dataclass(frozen=True)
class FovParams:
    """Thresholds of the FOV rule (metres and degrees)."""

    hfov_deg: float = geometry.DEFAULT_HFOV_DEG  # horizontal field of view of every camera
    near: float = 0.5             # ray crossings closer than this to the target camera are rejected
    far: float = 20.0             # ... and farther than this (fog and occlusion make them useless)
    max_cam_dist: float = 20.0    # cameras farther apart than this never overlap
    parallel_deg: float = 15.0    # ray pairs closer than this in direction count as parallel
    parallel_offset: float = 4.0  # parallel rays meet if the memory ray is this close to the side
    same_view_dist: float = 1.0   # cameras this close ...
    same_view_deg: float = 26.0   # ... and this close in yaw always overlap

    def check(self) -> "FovParams":
        if not 0.0 < self.hfov_deg < 180.0:
            raise ValueError(f"hfov_deg must be in (0, 180) degrees, got {self.hfov_deg}")
        if not 0.0 <= self.near < self.far:
            raise ValueError(f"need 0 <= near < far (metres), got near={self.near}, far={self.far}")
        for name in ("max_cam_dist", "parallel_deg", "parallel_offset", "same_view_dist", "same_view_deg"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        return self


def _pair_meets(dx, dy, ux, uy, vx, vy, p: FovParams, sin_par: float):
    """Does target ray (origin 0, dir u) meet memory ray (origin d, dir v)? u: scalars, the rest (S,) -> bool (S,).

    Solves a*u - b*v = d: a = (d x v) / (u x v), b = (d x u) / (u x v); a is the distance of the
    crossing from the target camera (u is a unit vector). One target at a time on flat arrays, the
    parallel case only on its rows: several times faster than broadcasting (S, T, 2), with the same
    float operations per element, so the same answers. Parallel rows divide by a tiny (or zero)
    ``u x v`` too; what that gives them is overwritten by the parallel case (call under
    ``np.errstate(divide="ignore", invalid="ignore")``).
    """
    den = ux * vy
    den -= uy * vx
    dxu = dx * uy
    dxu -= dy * ux                               # d x u; |d x u| is the memory origin's distance from the target ray's line
    a = dx * vy
    a -= dy * vx
    a /= den
    meets = (a >= p.near) if p.near > 0 else (a > 0)   # a >= near > 0 implies a > 0
    meets &= a <= p.far
    np.divide(dxu, den, out=a)
    meets &= a > 0                               # b > 0: in front of the memory camera
    np.abs(den, out=den)
    i = np.flatnonzero(den <= sin_par)           # parallel: same direction, close to the side, not too far ahead
    if len(i):
        dxi, dyi, vxi, vyi = dx.take(i), dy.take(i), vx.take(i), vy.take(i)
        meets[i] = ((ux * vxi + uy * vyi) > 0) & (np.abs(dxu.take(i)) <= p.parallel_offset) & ((ux * dxi + uy * dyi) <= p.far)
    return meets


class _Edges:
    """A memory's positions and yaws (one (3, S) block) and its FOV edge directions: the left ones for
    every frame, the right ones only for the frames that ask (``right``): the rule needs them only
    where the left pair met, and trig is most of the rule's cost."""

    def __init__(self, mem_poses: np.ndarray, p: FovParams):
        self.half = np.deg2rad(p.hfov_deg) / 2.0
        a = np.empty((5, len(mem_poses)))
        a[:3] = mem_poses.T
        np.add(a[2], self.half, out=a[3])                      # the left edge's heading
        np.sin(a[3], out=a[4])
        np.cos(a[3], out=a[3])
        self.x, self.y, self.yaw, self.lx, self.ly = a
        self._rx = self._ry = self._have = None

    @classmethod
    def of(cls, x, y, yaw, lx, ly, rx, ry, half) -> "_Edges":
        """From arrays already computed (every frame's both edges, as ``__init__`` and ``right`` compute them)."""
        e = object.__new__(cls)
        e.half, e.x, e.y, e.yaw, e.lx, e.ly = half, x, y, yaw, lx, ly
        e._rx, e._ry, e._have = rx, ry, True
        return e

    def __len__(self):
        return len(self.x)

    def take(self, i: np.ndarray) -> "_Edges":
        """The frames i only."""
        e = object.__new__(_Edges)
        e.half = self.half
        rows = [self.x, self.y, self.yaw, self.lx, self.ly]
        if self._have is not None:
            rows += [self._rx, self._ry]
        a = [r.take(i) for r in rows]
        e.x, e.y, e.yaw, e.lx, e.ly = a[:5]
        e._rx = e._ry = e._have = None
        if self._have is True:
            e._rx, e._ry, e._have = a[5], a[6], True
        elif self._have is not None:
            e._rx, e._ry, e._have = a[5], a[6], self._have[i]
        return e

    def right(self, i: np.ndarray):
        """(cos, sin) of the right edge's heading (yaw - hfov / 2) of frames i, each computed once."""
        if self._have is True:
            return self._rx.take(i), self._ry.take(i)
        if self._have is None:
            self._rx, self._ry, self._have = np.empty(len(self)), np.empty(len(self)), np.zeros(len(self), bool)
        need = i[~self._have[i]]
        if len(need):
            edge = self.yaw[need] - self.half
            self._rx[need], self._ry[need] = np.cos(edge), np.sin(edge)
            self._have[need] = True
        return self._rx[i], self._ry[i]


def _rule(e: _Edges, targets: np.ndarray, p: FovParams, any_only: bool) -> np.ndarray:
    """The rule for every memory frame of e against every target (T, 3): bool (S, T), or with
    ``any_only`` bool (S,) whether any target accepts it (a frame already accepted is not tested again).

    Per target: both pairs only where needed (the right pair where the left one met, within
    max_cam_dist; the same-view case within same_view_dist), with the same per-element floats as
    computing everything, so every frame gets the same answer whatever subset it is tested in.
    """
    half = e.half
    sin_par = np.sin(np.deg2rad(p.parallel_deg))
    sv = np.deg2rad(p.same_view_deg)
    md2, sd2 = p.max_cam_dist ** 2, p.same_view_dist ** 2
    S = len(e)
    out = np.zeros(S, bool) if any_only else np.zeros((len(targets), S), bool)
    full, alive = out, None              # any_only: out holds the frames still alive (alive: their rows in full)
    fresh = True                         # any_only: no frame of out accepted yet
    targets = np.asarray(targets, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, t in enumerate(targets):
            if any_only and j == 1 and len(targets) > 2 and 4 * np.count_nonzero(full) > S:
                alive = np.flatnonzero(~full)        # a quarter or more accepted: test the rest only
                e, out = e.take(alive), np.zeros(len(alive), bool)
                fresh = True
            xt, yt, wt = (float(v) for v in t)
            dx, dy = e.x - xt, e.y - yt                           # target -> memory
            dist2 = dx * dx + dy * dy
            left = _pair_meets(dx, dy, np.cos(wt + half), np.sin(wt + half), e.lx, e.ly, p, sin_par)
            hit = out if any_only else out[j]
            if any_only and not fresh:
                left &= ~hit
            i = np.flatnonzero(left)
            i = np.compress(dist2.take(i) <= md2, i)      # (not i[mask]: boolean indexing is ~3x slower here)
            if len(i):
                rx, ry = e.right(i)
                i = np.compress(_pair_meets(dx.take(i), dy.take(i), np.cos(wt - half), np.sin(wt - half), rx, ry, p,
                                            sin_par), i)
                hit[i] = True
                fresh = False
            near = np.flatnonzero(dist2 <= sd2)                   # the (slow) angle wrap for those only
            if len(near):
                same = near[np.abs(geometry.wrap_angle(e.yaw.take(near) - wt)) <= sv]
                hit[same] = True
                fresh = fresh and len(same) == 0
    if any_only:
        if alive is not None:
            full[alive] = out
        return full
    return np.ascontiguousarray(out.T)


def overlap_matrix(mem_poses: np.ndarray, target_poses: np.ndarray, p: FovParams) -> np.ndarray:
    """The FOV rule for every (memory, target) pair, without prefiltering. (S, 3), (T, 3) -> bool (S, T).

    Row s depends on memory pose s alone, so any subset of memory gets the same rows (what lets the
    index test only some frames and still match the exhaustive search bit for bit).
    """
    return _rule(_Edges(mem_poses, p), target_poses, p, any_only=False)


def overlap_any(mem_poses: np.ndarray, target_poses: np.ndarray, p: FovParams) -> np.ndarray:
    """``overlap_matrix(...).any(1)``, testing each frame only until a target accepts it: bool (S,)."""
    return _rule(_Edges(mem_poses, p), target_poses, p, any_only=True)


def prefilter(mem_poses: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Memory indices whose position lies within ``radius`` metres of any of ``centres`` (C, 2).

    One pass over the x column against the centres' bounding box, then exact tests on the survivors:
    O(M) with a small constant (about 1.5 ms per million frames), so the ray test never sees far
    frames. Returns int64 (S,) in increasing index order.
    """
    c = np.asarray(centres, np.float64).reshape(-1, 2)
    slack = 1e-9 * (1.0 + radius + float(np.abs(c).max()))   # the box holds every disc despite rounding
    x0, x1 = c[:, 0].min() - radius - slack, c[:, 0].max() + radius + slack
    y0, y1 = c[:, 1].min() - radius - slack, c[:, 1].max() + radius + slack
    xs = mem_poses[:, 0]
    cx, rx = 0.5 * (x0 + x1), 0.5 * (x1 - x0)
    if len(xs) <= _BLOCK:
        idx = np.flatnonzero(np.abs(xs - cx) <= rx)
    else:  # blocks that stay in cache: ~20% faster than whole-array temporaries at 1e6 frames
        buf, parts = np.empty(_BLOCK), []
        for j in range(0, len(xs), _BLOCK):
            b = buf[: min(_BLOCK, len(xs) - j)]
            np.subtract(xs[j:j + _BLOCK], cx, out=b)
            np.abs(b, out=b)
            parts.append(np.flatnonzero(b <= rx) + j)
        idx = np.concatenate(parts)
    ys = mem_poses[idx, 1]
    idx = idx[(ys >= y0) & (ys <= y1)]
    if len(c) == 1 or len(idx) == 0:
        keep = ((mem_poses[idx, :2] - c[0]) ** 2).sum(-1) <= radius ** 2
        return idx[keep]
    keep = np.zeros(len(idx), bool)
    for j in range(0, len(idx), 65536):  # bounded working set: (chunk, C)
        sub = mem_poses[idx[j:j + 65536], :2]
        d2 = ((sub[:, None, :] - c[None]) ** 2).sum(-1)
        keep[j:j + 65536] = (d2 <= radius ** 2).any(1)
    return idx[keep]


def fov_overlap(mem_poses, target_poses, **params) -> np.ndarray:
    """Paper §3.3 / Fig. 4 FOV overlap of every memory camera with every target camera.

    Args:
        mem_poses: (M, 3) planar poses (x, y, yaw) in metres / radians.
        target_poses: (T, 3) planar poses.
        **params: fields of :class:`FovParams` (``near``, ``far``, ``max_cam_dist``, ...).

    Returns:
        bool (M, T): True where memory frame i's view fan overlaps target frame j's.
    """
    p = FovParams(**params).check()
    mem = geometry._as_poses(mem_poses, "mem_poses").reshape(-1, 3)
    tgt = geometry._as_poses(target_poses, "target_poses").reshape(-1, 3)
    out = np.zeros((len(mem), len(tgt)), bool)
    if len(mem) == 0 or len(tgt) == 0:
        return out
    sub = prefilter(mem, tgt[:, :2], max(p.max_cam_dist, p.same_view_dist))
    out[sub] = overlap_matrix(mem[sub], tgt, p)
    return out


def facing(mem_poses: np.ndarray, target_poses: np.ndarray, p: FovParams) -> np.ndarray:
    """Necessary condition for the rule, O(S): can the memory camera's fan reach the target fans?

    Every accepted crossing lies on a target edge ray within ``far``, i.e. in the disc around the
    target fans' corners, and lies on a memory edge ray, so the memory fan must reach that disc (a
    bearing test). The disc is grown by ``parallel_offset`` and ``same_view_dist`` so the parallel
    and same-view cases pass too. Returns bool (S,).
    """
    o, l, r = geometry.fov_edge_rays(target_poses, p.hfov_deg)                      # (T, 2) each
    corners = np.concatenate([o, o + p.far * l, o + p.far * r])                      # (3T, 2)
    centre = 0.5 * (corners.min(0) + corners.max(0))
    radius = np.sqrt(((corners - centre) ** 2).sum(1).max()) + p.parallel_offset + p.same_view_dist
    d = centre - mem_poses[:, :2]
    dist = np.hypot(d[:, 0], d[:, 1])
    bearing = np.abs(geometry.wrap_angle(np.arctan2(d[:, 1], d[:, 0]) - mem_poses[:, 2]))
    slack = np.arcsin(np.clip(radius / np.maximum(dist, 1e-9), 0.0, 1.0))
    return (dist <= radius) | (bearing <= np.deg2rad(p.hfov_deg) / 2.0 + slack + 1e-9)


def fov_candidates(mem_poses: np.ndarray, target_poses: np.ndarray, p: FovParams, index=None, hits: bool = True):
    """Memory frames overlapping ANY target pose (the paper's candidate set).

    ``index``: the memory's ``camworld.memory.PoseGrid`` (``MemoryBank.index``); then only the cells
    and heading bins that can hold a candidate are read (``camworld.retrieval.index``), with the same
    result. ``hits=False`` skips counting (the strategies that only need the set).

    Returns (idx int64 (C,) increasing, hits int64 (C,) how many target poses each overlaps, or None).
    Inputs must already be validated float64 arrays.
    """
    if index is not None:
        from camworld.retrieval.index import planar_candidates

        return planar_candidates(index, mem_poses, target_poses, p, hits)
    sub = prefilter(mem_poses, target_poses[:, :2], max(p.max_cam_dist, p.same_view_dist))
    if len(sub) > 256:  # O(S) bearing cut before the O(S T) ray test
        sub = sub[facing(mem_poses[sub], target_poses, p)]
    if len(sub) == 0:
        return sub, (np.zeros(0, np.int64) if hits else None)
    count = np.zeros(len(sub), np.int64)
    for j in range(0, len(sub), 32768):  # bounded working set
        count[j:j + 32768] = overlap_matrix(mem_poses[sub[j:j + 32768]], target_poses, p).sum(1)
    keep = count > 0
    return sub[keep], (count[keep] if hits else None)
