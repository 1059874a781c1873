"""Ground-truth co-visibility from the sim's depth: what the FOV rule (§3.3) approximates.

For a source frame a and a destination frame b, take a grid of a's pixels, lift each to the world
point its depth says it shows (``geometry.pixel_rays`` * z-depth, then a's camera-to-world
``[R|t]``), project it into b, and call it *seen by b* when it lands inside b's image, in front of
b, and not behind what b's depth map shows there:

    z_b <= (1 + rel_tol) * max(depth_b over the 3x3 pixels around the landing pixel)

The 3x3 max makes the test robust to where inside a pixel the point lands (near the horizon the
ground's depth changes by tens of percent from one pixel row to the next); occluders (walls are at
least one sim cell thick) are much deeper than the tolerance. Sky pixels of a (depth at or beyond
``sky_depth``, the sim's ``FAR``) show no surface and are left out of the fraction.

``covisibility(a, b)`` = fraction of a's valid sampled pixels that b sees. A frame with itself gives
exactly 1 (every point lands back on its own pixel centre); a wall between two cameras gives 0.
It is not symmetric.

Letters: A source frames, B destination frames, G sampled pixels per frame, H/W frame size.
"""

from __future__ import annotations

import numpy as np

from camworld import geometry


def _sky_depth(sky_depth):
    if sky_depth is not None:
        return float(sky_depth)
    from camworld.sim.render import FAR  # the sim paints sky and everything beyond FAR at FAR

    return float(FAR)


def _grid(H: int, W: int, grid: int | None):
    """Pixel rows (gh,) and columns (gw,) of the sampling grid (all pixels when grid is None)."""
    if grid is None:
        return np.arange(H), np.arange(W)
    if int(grid) < 1:
        raise ValueError(f"grid must be a positive number of samples per side (or None for all pixels), got {grid}")
    gh, gw = min(int(grid), H), min(int(grid), W)
    return ((np.arange(gh) + 0.5) * H / gh).astype(int), ((np.arange(gw) + 0.5) * W / gw).astype(int)


def _check(depth, poses, name):
    d = np.asarray(depth, np.float32)
    if d.ndim == 2:
        d = d[None]
    p = geometry._as_poses(poses, f"{name}_poses").reshape(-1, 3)
    if d.ndim != 3 or len(d) != len(p):
        raise ValueError(f"{name}_depth must be (N, H, W) z-depth in metres with N = len({name}_poses) = {len(p)}, "
                         f"got shape {np.shape(depth)}")
    return d, p


def _max3x3(d: np.ndarray) -> np.ndarray:
    """3x3 max filter over the last two axes (edge-padded)."""
    p = np.pad(d, ((0, 0), (1, 1), (1, 1)), mode="edge")
    H, W = d.shape[1:]
    m = p[:, :H, :]
    m = np.maximum(np.maximum(m, p[:, 1:H + 1, :]), p[:, 2:H + 2, :])                # (N, H, W + 2)
    return np.maximum(np.maximum(m[:, :, :W], m[:, :, 1:W + 1]), m[:, :, 2:W + 2])


def visibility(src_depth, src_poses, dst_depth, dst_poses, *, grid: int | None = 16, rel_tol: float = 0.05,
               hfov_deg: float = geometry.DEFAULT_HFOV_DEG, sky_depth: float | None = None):
    """Which sampled pixels of each source frame each destination frame sees.

    Args:
        src_depth: (A, H, W) float z-depth in metres of the source frames (or (H, W) for one).
        src_poses: (A, 3) their planar poses.
        dst_depth: (B, H', W') z-depth of the destination frames; dst_poses: (B, 3).
        grid: samples per image side (G = grid * grid pixels), None for every pixel.
        rel_tol: relative depth tolerance of the occlusion test.
        hfov_deg: horizontal FOV of all frames (the sim's default).
        sky_depth: depth at or beyond which a source pixel is sky (default: the sim's FAR).

    Returns:
        (seen bool (A, B, G), valid bool (A, G)): ``seen`` is False wherever ``valid`` is.
    """
    sd, sp = _check(src_depth, src_poses, "src")
    dd, dp = _check(dst_depth, dst_poses, "dst")
    sky = _sky_depth(sky_depth)
    A, H, W = sd.shape
    B, H2, W2 = dd.shape
    rows, cols = _grid(H, W, grid)
    rays = geometry.pixel_rays(H, W, hfov_deg)[rows][:, cols].reshape(-1, 3)          # (G, 3), z = 1
    z = sd[:, rows][:, :, cols].reshape(A, -1).astype(np.float64)                     # (A, G)
    valid = np.isfinite(z) & (z > 0) & (z < sky * (1 - 1e-6))
    Ea = geometry.planar_to_extrinsics(sp)                                            # (A, 3, 4)
    world = np.einsum("aij,agj->agi", Ea[:, :, :3], rays[None] * z[..., None]) + Ea[:, None, :, 3]  # (A, G, 3)
    Eb = geometry.planar_to_extrinsics(dp)                                            # (B, 3, 4)
    K = geometry.intrinsics(H2, W2, hfov_deg)
    dmax = _max3x3(dd)                                                                # (B, H', W')
    G = world.shape[1]
    seen = np.zeros((A, B, G), bool)
    step = max(1, 2_000_000 // max(1, A * G))
    for j in range(0, B, step):
        R, t = Eb[j:j + step, :, :3], Eb[j:j + step, :, 3]                            # (b, 3, 3), (b, 3)
        rel = world[:, None] - t[None, :, None]                                       # (A, b, G, 3)
        cam = np.einsum("bji,abgj->abgi", R, rel)                                     # world -> camera b
        zb = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = K[0, 0] * cam[..., 0] / zb + K[0, 2]
            v = K[1, 1] * cam[..., 1] / zb + K[1, 2]
        inside = (zb > 1e-6) & (u >= 0) & (u < W2) & (v >= 0) & (v < H2)
        ui = np.clip(np.where(inside, u, 0), 0, W2 - 1).astype(np.int64)
        vi = np.clip(np.where(inside, v, 0), 0, H2 - 1).astype(np.int64)
        bi = np.arange(j, j + len(R))[None, :, None]
        there = dmax[bi, vi, ui]                                                      # (A, b, G)
        seen[:, j:j + step] = inside & (zb <= (1.0 + rel_tol) * there) & valid[:, None]
    return seen, valid


def covisibility(src_depth, src_poses, dst_depth, dst_poses, **kw) -> np.ndarray:
    """Fraction of each source frame's (non-sky) pixels that each destination frame sees: float (A, B).

    Keyword arguments as :func:`visibility`. A source frame with no valid pixel scores 0.
    """
    seen, valid = visibility(src_depth, src_poses, dst_depth, dst_poses, **kw)
    n = valid.sum(-1)                                                                 # (A,)
    return seen.sum(-1) / np.maximum(n, 1)[:, None]
