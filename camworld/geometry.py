"""Camera geometry: planar poses, camera-to-world [R|t], intrinsics, FOV edge rays, interpolation.

Conventions (DESIGN.md §4, a contract):
  * World frame: z up, ground plane XY, metres.
  * Planar pose ``(x, y, yaw)``: yaw in radians about +z, yaw = 0 looks along +x,
    positive yaw turns left (counter-clockwise seen from above).
  * Extrinsics are camera-to-world ``[R|t]`` (3x4) with OpenCV camera axes:
    x right, y down, z forward. The camera centre sits at height ``CAMERA_HEIGHT``.
  * Full 6-DoF poses are the same camera-to-world [R|t] with any rotation and height: build them
    with ``euler_to_extrinsics`` (yaw, then pitch up, then roll), check them with ``as_extrinsics``.
  * Intrinsics come from the horizontal FOV (default 52.67 degrees, as in the paper) and
    the frame size; pixels are square, the principal point is the image centre, and pixel
    ``(u, v)`` has its centre at ``(u + 0.5, v + 0.5)``.

Letters: P poses, H/W frame height/width, N points.
All functions are pure numpy and vectorised over leading pose dimensions.
"""

from __future__ import annotations

import numpy as np

DEFAULT_HFOV_DEG = 52.67
CAMERA_HEIGHT = 1.6  # metres above the ground plane


def _as_poses(poses, name: str = "poses") -> np.ndarray:
    p = np.asarray(poses, dtype=np.float64)
    if p.shape[-1:] != (3,):
        raise ValueError(f"{name} must have shape (..., 3) as (x, y, yaw), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contain NaN or inf: every (x, y, yaw) must be finite")
    return p


def batch_target_poses(target_poses, num_worlds: int, active=None):
    """Validate a batched step's poses: -> (float64 (B, T, 3) poses, int indices of the active worlds).
    ``active`` None = all B worlds; else a (B,) bool mask."""
    tp = np.asarray(target_poses, dtype=np.float64)
    B = int(num_worlds)
    if tp.ndim != 3 or tp.shape[0] != B or tp.shape[2] != 3 or tp.shape[1] < 1:
        raise ValueError(f"target_poses must be ({B}, T >= 1, 3), got {tp.shape}")
    if not np.all(np.isfinite(tp)):
        raise ValueError("target_poses contain NaN or inf")
    act = np.ones(B, bool) if active is None else np.asarray(active, bool).reshape(B)
    return tp, np.flatnonzero(act)


def wrap_angle(a):
    """Wrap angles (radians) to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


def planar_to_extrinsics(poses, height: float = CAMERA_HEIGHT) -> np.ndarray:
    """Planar poses (..., 3) -> camera-to-world [R|t] (..., 3, 4), OpenCV camera axes."""
    p = _as_poses(poses)
    x, y, yaw = p[..., 0], p[..., 1], p[..., 2]
    c, s = np.cos(yaw), np.sin(yaw)
    zero, one = np.zeros_like(c), np.ones_like(c)
    right = np.stack([s, -c, zero], -1)       # camera +x in world
    down = np.stack([zero, zero, -one], -1)   # camera +y in world
    fwd = np.stack([c, s, zero], -1)          # camera +z in world
    R = np.stack([right, down, fwd], -1)      # (..., 3, 3), columns are camera axes
    t = np.stack([x, y, np.full_like(x, height)], -1)[..., None]
    return np.concatenate([R, t], -1)


def extrinsics_to_planar(ext) -> np.ndarray:
    """Camera-to-world [R|t] (..., 3, 4) -> planar poses (..., 3). Inverse of planar_to_extrinsics.

    For a 6-DoF pose: its ground position and the heading of its optical axis (height, pitch and roll
    are dropped; a camera looking straight up or down gets yaw 0)."""
    E = np.asarray(ext, dtype=np.float64)
    if E.shape[-2:] != (3, 4):
        raise ValueError(f"extrinsics must have shape (..., 3, 4), got {E.shape}")
    fwd = E[..., :, 2]
    yaw = np.arctan2(fwd[..., 1], fwd[..., 0])
    return np.stack([E[..., 0, 3], E[..., 1, 3], yaw], -1)


def as_extrinsics(ext, name: str = "extrinsics", tol: float = 1e-6) -> np.ndarray:
    """Validate camera-to-world poses (..., 3, 4) or (..., 4, 4) -> float64 (..., 3, 4).

    Checks: finite, R orthonormal with det +1 (within ``tol``), and a 4x4's last row [0, 0, 0, 1].
    """
    E = np.asarray(ext, dtype=np.float64)
    if E.ndim < 2 or E.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"{name} must be camera-to-world [R|t] of shape (..., 3, 4) or (..., 4, 4), got {E.shape}")
    if not np.all(np.isfinite(E)):
        raise ValueError(f"{name} contain NaN or inf: every [R|t] entry must be finite")
    if E.shape[-2] == 4:
        if np.abs(E[..., 3, :] - [0.0, 0.0, 0.0, 1.0]).max(initial=0.0) > tol:
            raise ValueError(f"{name}: the last row of a 4x4 camera-to-world matrix must be [0, 0, 0, 1]")
        E = E[..., :3, :]
    R = E[..., :3, :3]
    err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max(initial=0.0)
    if err > tol or (E.size and np.linalg.det(R).min() < 0):
        raise ValueError(f"{name}: each rotation R must be orthonormal with det +1 (max |R^T R - I| = {err:.2g}); "
                         "build poses with camworld.geometry.euler_to_extrinsics or planar_to_extrinsics")
    return np.ascontiguousarray(E)


def euler_to_extrinsics(x, y, z, yaw, pitch=0.0, roll=0.0) -> np.ndarray:
    """Camera-to-world [R|t] (..., 3, 4) of a camera at (x, y, z) metres, turned by yaw (about +z, as the
    planar pose), then pitched by ``pitch`` (radians, positive looks up), then rolled by ``roll``
    (about its own optical axis, positive turns the image clockwise as the camera sees it).

    Zero pitch and roll at z = CAMERA_HEIGHT gives ``planar_to_extrinsics((x, y, yaw))``.
    """
    x, y, z, yaw, pitch, roll = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (x, y, z, yaw, pitch, roll)))
    base = planar_to_extrinsics(np.stack([x, y, yaw], -1))[..., :3]           # (..., 3, 3) level camera
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    zero, one = np.zeros_like(cp), np.ones_like(cp)
    # pitch up = rotate about camera +x so that forward (+z) tilts towards up (-y)
    Rp = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    Rr = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2)
    R = base @ Rp @ Rr
    return np.concatenate([R, np.stack([x, y, z], -1)[..., None]], -1)


def frustum_tans(hfov_deg: float = DEFAULT_HFOV_DEG, aspect: float = 1.0) -> tuple:
    """(tan of half the horizontal FOV, tan of half the vertical FOV) for frames of width / height ``aspect``."""
    if not (0.0 < hfov_deg < 180.0):
        raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
    if not aspect > 0.0:
        raise ValueError(f"aspect (width / height) must be > 0, got {aspect}")
    th = float(np.tan(np.deg2rad(hfov_deg) / 2.0))
    return th, th / float(aspect)


def to_homogeneous(ext) -> np.ndarray:
    """[R|t] (..., 3, 4) -> (..., 4, 4)."""
    E = np.asarray(ext, dtype=np.float64)
    bottom = np.zeros(E.shape[:-2] + (1, 4))
    bottom[..., 0, 3] = 1.0
    return np.concatenate([E, bottom], -2)


def relative_extrinsics(ext, ref) -> np.ndarray:
    """Express camera-to-world poses ``ext`` (..., 3, 4) in the camera frame of ``ref`` (3, 4).

    Returns inv(ref) @ ext as (..., 3, 4). Invariant to any rigid transform applied to both.
    ``ref`` broadcasts against ``ext`` under numpy matmul rules.
    """
    E = to_homogeneous(ext)
    Rr = np.asarray(ref, dtype=np.float64)[..., :3, :3]
    tr = np.asarray(ref, dtype=np.float64)[..., :3, 3]
    inv = np.zeros(Rr.shape[:-2] + (4, 4))
    inv[..., :3, :3] = np.swapaxes(Rr, -1, -2)
    inv[..., :3, 3] = -np.einsum("...ji,...j->...i", Rr, tr)
    inv[..., 3, 3] = 1.0
    return (inv @ E)[..., :3, :]  # broadcasts: pass ref[:, None] for batched (B, N, 3, 4) poses


def focal_from_hfov(width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> float:
    """Focal length in pixels for a horizontal FOV."""
    if not (0.0 < hfov_deg < 180.0):
        raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
    return 0.5 * width / np.tan(np.deg2rad(hfov_deg) / 2.0)


def intrinsics(height: int, width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """3x3 pinhole intrinsics K for a frame of (height, width) and a horizontal FOV."""
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"frame size must be positive, got height={height}, width={width}")
    f = focal_from_hfov(width, hfov_deg)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def pixel_rays(height: int, width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """Camera-frame ray directions through pixel centres, (H, W, 3) with z = 1 (not unit length)."""
    K = intrinsics(height, width, hfov_deg)
    u = (np.arange(width) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(height) + 0.5 - K[1, 2]) / K[1, 1]
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu, vv, np.ones_like(uu)], -1)


def fov_edge_rays(poses, hfov_deg: float = DEFAULT_HFOV_DEG):
    """The two FOV edge rays of planar cameras (paper §3.3, Fig. 4).

    Returns (origins (..., 2), left_dirs (..., 2), right_dirs (..., 2)); directions are unit
    vectors in the XY plane. Left is yaw + hfov/2 (counter-clockwise), right is yaw - hfov/2.
    """
    p = _as_poses(poses)
    half = np.deg2rad(hfov_deg) / 2.0
    yaw = p[..., 2]
    left = np.stack([np.cos(yaw + half), np.sin(yaw + half)], -1)
    right = np.stack([np.cos(yaw - half), np.sin(yaw - half)], -1)
    return p[..., :2].copy(), left, right


def interpolate_poses(start, end, n: int, include_start: bool = False) -> np.ndarray:
    """Interpolate planar poses: straight line in XY, shortest arc in yaw.

    Returns (n, 3) poses ending exactly at ``end``; with ``include_start`` the first is ``start``.
    In-between yaws are continuous from ``start``'s yaw (not wrapped); the last row is ``end``
    verbatim, so its yaw equals the continuous value modulo 2 pi.
    """
    a, b = _as_poses(start, "start"), _as_poses(end, "end")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    s = np.linspace(0.0, 1.0, n) if include_start else np.arange(1, n + 1) / n
    if include_start and n == 1:
        s = np.array([0.0])
    dyaw = wrap_angle(b[2] - a[2])
    out = a[None] + s[:, None] * (b - a)[None]
    out[:, 2] = a[2] + s * dyaw
    out[s == 1.0] = b  # exact end point (a + (b - a) can differ from b in the last bit)
    if include_start:
        out[0] = a
    return out


def bspline(control: np.ndarray, n: int) -> np.ndarray:
    """Sample a uniform cubic B-spline with control points (M, D) at n points (n, D).

    The curve approximates (does not pass through) interior control points. The end points are clamped (control points repeated) so the curve starts and ends at the
    first and last control points.
    """
    c = np.asarray(control, dtype=np.float64)
    if c.ndim != 2 or len(c) < 2:
        raise ValueError(f"control points must be (M >= 2, D), got {c.shape}")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    c = np.concatenate([c[:1], c[:1], c, c[-1:], c[-1:]], 0)
    segs = len(c) - 3
    u = np.linspace(0.0, segs, n)
    i = np.minimum(np.floor(u).astype(int), segs - 1)
    t = (u - i)[:, None]
    b0 = (1 - t) ** 3 / 6
    b1 = (3 * t**3 - 6 * t**2 + 4) / 6
    b2 = (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6
    b3 = t**3 / 6
    out = b0 * c[i] + b1 * c[i + 1] + b2 * c[i + 2] + b3 * c[i + 3]
    out[0] = c[0]  # exact end points (the basis sums to 1 only up to rounding)
    if n > 1:
        out[-1] = c[-1]
    return out
