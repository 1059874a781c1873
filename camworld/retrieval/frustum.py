"""6-DoF retrieval: frustum overlap in 3D for cameras that pitch, roll and climb (beyond paper §3.3).

The paper's FOV rule (``fov.py``) reduces every camera to two edge rays in the ground plane, so it
cannot tell a camera looking at the floor from one looking at the sky, or one camera from another
10 m above it. This rule works on full camera-to-world extrinsics ``[R|t]`` (3, 4), OpenCV axes:

1. A fixed pattern of ``n_points`` points fills every target camera's frustum between ``near`` and
   ``far`` metres of depth (an R2 low-discrepancy sequence, the same on every call, so the rule is
   deterministic): image coordinates uniform over the frame, depth with density proportional to
   depth (z = sqrt(near^2 + (far^2 - near^2) w)), i.e. evenly spread over the frustum's ground fan,
   the domain the planar rule reasons about.
2. A memory camera *sees* a point when the point projects inside its frame (``hfov_deg``, ``aspect``
   = width / height) in front of it, at most ``far`` metres deep.
3. Memory camera m overlaps target t when it sees at least ``min_frac`` of t's points and the two
   camera centres are at most ``max_cam_dist`` metres apart (in 3D).

Against the planar rule, on planar poses. The two rules ask different questions: the planar one
whether the fans' edge rays cross in [near, far]; this one how much of the target's view the memory
sees. ``tests/test_retrieval6.py`` measures their agreement on random planar memories (per (memory,
target) pair 93%, candidate sets' pooled Jaccard 0.73; on the benchmark's sim episodes 95.5% and a
mean Jaccard of 0.56) and checks that the strategies pick the same frames whenever the two candidate
sets agree, since they share all selection code; ``docs/benchmarks/retrieval.md`` compares both with
the sim's true co-visibility (the frustum rule is no worse; it finds more outdoors).

Points are tested in float32 on coordinates centred on the targets, which bounds the cost; the
result for a memory frame depends on that frame alone, so the index (``index.cone_superset``) can
skip frames without changing the answer.

Letters: M memory frames, S frames tested, T target frames, P points (T * n_points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camworld import geometry

_R3 = 1.22074408460575947536   # the 3-D R2 sequence's generator: the real root of x^4 = x + 1
_F32_SLACK = 1e-3              # radians: pruning cones are this much wider than the float32 point test


@dataclass(frozen=True)
class FrustumParams:
    """Thresholds of the 6-DoF frustum rule (metres, degrees, fractions)."""

    hfov_deg: float = geometry.DEFAULT_HFOV_DEG  # horizontal field of view of every camera
    aspect: float = 1.0            # frame width / height (64x64 frames: 1); sets the vertical FOV
    near: float = 0.5              # target points from this depth ...
    far: float = 20.0              # ... to this; and memory cameras see at most this deep
    max_cam_dist: float = 20.0     # camera centres farther apart than this never overlap
    min_frac: float = 0.4          # overlap: the memory camera sees at least this fraction of the points
    n_points: int = 64             # points per target frustum

    def check(self) -> "FrustumParams":
        geometry.frustum_tans(self.hfov_deg, self.aspect)
        if not 0.0 <= self.near < self.far:
            raise ValueError(f"need 0 <= near < far (metres), got near={self.near}, far={self.far}")
        if not self.max_cam_dist >= 0.0:
            raise ValueError(f"max_cam_dist must be >= 0 metres, got {self.max_cam_dist}")
        if not 0.0 < self.min_frac <= 1.0:
            raise ValueError(f"min_frac must be in (0, 1], got {self.min_frac}")
        if isinstance(self.n_points, bool) or int(self.n_points) < 1:
            raise ValueError(f"n_points must be an int >= 1, got {self.n_points!r}")
        return self

    @property
    def min_count(self) -> int:
        return int(np.ceil(self.min_frac * int(self.n_points) - 1e-9))

    @property
    def half_angle(self) -> float:
        """Half-angle of the cone around the optical axis that holds the frustum (radians)."""
        th, tv = geometry.frustum_tans(self.hfov_deg, self.aspect)
        return float(np.arctan(np.hypot(th, tv)))


def frustum_pattern(n: int, hfov_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """The fixed sample points in a camera's own frame (OpenCV axes): (n, 3) metres."""
    i = np.arange(n, dtype=np.float64)
    u, v, w = ((0.5 + i / _R3 ** j) % 1.0 for j in (1, 2, 3))
    th, tv = geometry.frustum_tans(hfov_deg, aspect)
    z = np.sqrt(near * near + (far * far - near * near) * w)
    return np.stack([(2 * u - 1) * th * z, (2 * v - 1) * tv * z, z], -1)


def target_points(targets: np.ndarray, fp: FrustumParams, near: float | None = None,
                  far: float | None = None) -> np.ndarray:
    """World points of the pattern in every target frustum: (T, n_points, 3)."""
    local = frustum_pattern(int(fp.n_points), fp.hfov_deg, fp.aspect, fp.near if near is None else near,
                            fp.far if far is None else far)
    return np.einsum("tij,pj->tpi", targets[:, :, :3], local) + targets[:, None, :, 3]


def sees(ext: np.ndarray, points: np.ndarray, hfov_deg: float, aspect: float, far: float,
         chunk: int = 4096) -> np.ndarray:
    """Point-in-frustum test: bool (S, P), True where camera s sees point p (0 < depth <= far).

    Camera-frame coordinates q = R^T (p - t) are affine in p, evaluated by broadcasting in float32
    on coordinates centred at the points' mean (no BLAS: its threads stall on busy shared cores).
    """
    centre = points.mean(0)
    pts = (points - centre).astype(np.float32).T                                     # (3, P)
    R = ext[:, :, :3]
    off = -np.einsum("sji,sj->si", R, ext[:, :, 3] - centre)                         # (S, 3) = -R^T (t - c)
    W = np.concatenate([np.swapaxes(R, 1, 2), off[:, :, None]], 2).astype(np.float32)   # (S, 3, 4): rows x, y, z
    th, tv = (np.float32(v) for v in geometry.frustum_tans(hfov_deg, aspect))
    out = np.empty((len(ext), points.shape[0]), bool)
    for j in range(0, len(ext), chunk):
        w = W[j:j + chunk]
        q = [w[:, r, 0:1] * pts[0] + w[:, r, 1:2] * pts[1] + w[:, r, 2:3] * pts[2] + w[:, r, 3:4] for r in range(3)]
        x, y, z = q                                                                  # (chunk, P) each
        np.abs(x, out=x)
        np.abs(y, out=y)
        out[j:j + chunk] = (z > 0) & (z <= far) & (x <= th * z) & (y <= tv * z)
    return out


def overlap_matrix(mem_ext: np.ndarray, targets: np.ndarray, fp: FrustumParams) -> np.ndarray:
    """The frustum rule for every (memory, target) pair: (S, 3, 4), (T, 3, 4) -> bool (S, T)."""
    S, T = len(mem_ext), len(targets)
    out = np.zeros((S, T), bool)
    if S == 0:
        return out
    pts = target_points(targets, fp)                                                 # (T, n, 3)
    for t in range(T):
        d = mem_ext[:, :, 3] - targets[t, :, 3]
        near = np.flatnonzero((d * d).sum(1) <= fp.max_cam_dist ** 2)
        if len(near):
            seen = sees(mem_ext[near], pts[t], fp.hfov_deg, fp.aspect, fp.far).sum(1)
            out[near, t] = seen >= fp.min_count
    return out


def frustum_overlap(mem_poses, target_poses, **params) -> np.ndarray:
    """The 6-DoF rule for every memory camera against every target camera.

    Args:
        mem_poses: (M, 3, 4) or (M, 4, 4) camera-to-world extrinsics (or (M, 3) planar poses, lifted
            with ``geometry.planar_to_extrinsics``).
        target_poses: (T, 3, 4) / (T, 4, 4) extrinsics, or (T, 3) planar poses.
        **params: fields of :class:`FrustumParams`.

    Returns:
        bool (M, T).
    """
    fp = FrustumParams(**params).check()
    return overlap_matrix(as_full(mem_poses, "mem_poses"), as_full(target_poses, "target_poses"), fp)


def as_full(poses, name: str) -> np.ndarray:
    """Extrinsics (N, 3, 4) from extrinsics (N, 3, 4) / (N, 4, 4) / (3, 4) or planar poses (N, 3) / (3,)."""
    shape = np.shape(poses)
    if len(shape) >= 2 and shape[-2:] in ((3, 4), (4, 4)):
        return geometry.as_extrinsics(poses, name).reshape(-1, 3, 4)
    return geometry.planar_to_extrinsics(geometry._as_poses(poses, name).reshape(-1, 3))


def frustum_candidates(mem_ext: np.ndarray, targets: np.ndarray, fp: FrustumParams, index=None, hits: bool = True):
    """Memory frames overlapping ANY target camera under the frustum rule.

    ``index``: the memory's ``PoseGrid``: only frames whose cone can reach a target frustum are tested.
    Returns (idx int64 (C,) increasing, hits int64 (C,) or None).
    """
    pts = target_points(targets, fp)                                                 # (T, n, 3)
    centres = pts.mean(1)                                                            # (T, 3)
    radius = np.sqrt(((pts - centres[:, None]) ** 2).sum(-1).max(1))                  # (T,)
    cone = fp.half_angle + _F32_SLACK
    pos = mem_ext[:, :, 3]
    if index is not None:
        from camworld.retrieval.index import cone_superset

        sub = cone_superset(index, pos, centres[:, :2], radius, fp.max_cam_dist, targets[:, :2, 3], cone, pitched=True)
        sub = sub[((pos[sub, None, :] - targets[None, :, :, 3]) ** 2).sum(-1).min(1, initial=np.inf) <= fp.max_cam_dist ** 2]
    else:
        near = np.zeros(len(pos), bool)
        for c in targets[:, :, 3]:
            near |= ((pos - c) ** 2).sum(1) <= fp.max_cam_dist ** 2
        sub = np.flatnonzero(near)
    sub = sub[_cone_reaches(mem_ext[sub], centres, radius, cone)]
    count = overlap_matrix(mem_ext[sub], targets, fp).sum(1) if len(sub) else np.zeros(0, np.int64)
    keep = count > 0
    return sub[keep], (count[keep].astype(np.int64) if hits else None)


def _cone_reaches(ext: np.ndarray, centres: np.ndarray, radius: np.ndarray, half_angle: float) -> np.ndarray:
    """Necessary condition, O(S T): can a camera's frustum cone reach any target's bounding sphere?"""
    if len(ext) == 0:
        return np.zeros(0, bool)
    f = ext[:, :, 2]                                                                 # (S, 3) optical axes
    out = np.zeros(len(ext), bool)
    for c, r in zip(centres, radius):
        d = c - ext[:, :, 3]
        dist = np.sqrt((d * d).sum(1))
        cos_a = (d * f).sum(1) / np.maximum(dist, 1e-12)
        slack = np.arcsin(np.clip(r / np.maximum(dist, 1e-12), 0.0, 1.0))
        out |= (dist <= r) | (np.arccos(np.clip(cos_a, -1.0, 1.0)) <= half_angle + slack)
    return out
