"""Reprojection of a frame to a nearby camera: the start of a warp-initialised sample.

At env speed the next frame is a small warp of the newest one (<= 3.1 degrees and 0.31 m per frame).
The DiT sees 4x4-latent patches (16x16 pixels each), so a sub-token shift has to be carried inside token
features, and from pure noise it comes out blurred. A warp of the newest frame to the target camera puts
that shift into the sample's start instead: the sampler begins at flow time ``start`` from
``(1 - start) * encode(warp) + start * noise`` (SDEdit), so the network keeps the warp's layout and
repaints what the warp gets wrong (disoccluded strips, parallax, the frame edge).

Depth is unknown in a learned world, so the warp assumes it: a flat floor at the camera's height where a
ray points down, else a fronto-parallel plane at ``depth`` metres. For a pure rotation the warp is exact
whatever the depth (a homography); for translation it is as wrong as the assumed depth.

Conventions are ``camworld.geometry``'s: camera-to-world [R|t], OpenCV axes (x right, y down, z forward),
world z up with the floor at z = 0, square pixels, principal point at the image centre.
Letters: B worlds, T target frames, S frame size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from camworld.geometry import focal_from_hfov, pixel_rays


def warp_grid(src_ext, tgt_ext, size: int, hfov_deg: float, depth: float = 4.0) -> np.ndarray:
    """Sampling grid (B, T, S, S, 2) in ``grid_sample``'s [-1, 1] coordinates: where each target pixel's
    assumed scene point lands in the source camera. src_ext (B, 3, 4), tgt_ext (B, T, 3, 4).
    Points behind the source camera get coordinates outside [-1, 1] (filled from the border)."""
    if not depth > 0:
        raise ValueError(f"warp depth must be > 0 metres, got {depth}")
    src = np.asarray(src_ext, np.float64)
    tgt = np.asarray(tgt_ext, np.float64)
    if src.ndim != 3 or src.shape[1:] != (3, 4) or tgt.ndim != 4 or tgt.shape[2:] != (3, 4) \
            or tgt.shape[0] != src.shape[0]:
        raise ValueError(f"warp_grid takes src_ext (B, 3, 4) and tgt_ext (B, T, 3, 4), got {src.shape} "
                         f"and {tgt.shape}")
    rays = pixel_rays(size, size, hfov_deg)                          # (S, S, 3), z = 1
    R_t, c_t = tgt[..., :3], tgt[..., 3]                             # (B, T, 3, 3), (B, T, 3)
    d = np.einsum("btij,hwj->bthwi", R_t, rays)                      # world direction per unit z-depth
    z = np.full(d.shape[:-1], float(depth))
    down = d[..., 2] < -1e-6
    floor = -c_t[:, :, None, None, 2] / np.where(down, d[..., 2], -1.0)  # z-depth where the ray meets z = 0
    z = np.where(down & (floor > 0), np.minimum(z, floor), z)
    X = c_t[:, :, None, None] + z[..., None] * d                    # (B, T, S, S, 3) world points
    R_s, c_s = src[:, None, None, None, :, :3], src[:, None, None, None, :, 3]
    p = np.einsum("btuvji,btuvj->btuvi", np.broadcast_to(R_s, X.shape[:4] + (3, 3)), X - c_s)  # source camera
    f = focal_from_hfov(size, hfov_deg)
    ahead = p[..., 2] > 1e-3
    pz = np.where(ahead, p[..., 2], 1.0)
    u = np.where(ahead, f * p[..., 0] / pz, 1e3)                     # pixels from the centre
    v = np.where(ahead, f * p[..., 1] / pz, 1e3)
    return np.stack([u, v], -1) / (size / 2.0)                       # align_corners=False: edge = +-1


def warp_frames(frames: torch.Tensor, src_ext, tgt_ext, hfov_deg: float, depth: float = 4.0) -> torch.Tensor:
    """Warp source frames float (B, 3, S, S) to every target camera: -> (B, T, 3, S, S), bilinear, border
    pixels repeated where the target sees beyond the source frame."""
    B, _, S, _ = frames.shape
    grid = torch.as_tensor(warp_grid(src_ext, tgt_ext, S, hfov_deg, depth), dtype=frames.dtype,
                           device=frames.device)
    T = grid.shape[1]
    src = frames[:, None].expand(B, T, *frames.shape[1:]).reshape(B * T, *frames.shape[1:])
    out = F.grid_sample(src, grid.reshape(B * T, S, S, 2), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.reshape(B, T, *frames.shape[1:])
