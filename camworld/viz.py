"""Small picture helpers shared by the CLI tools and ``camworld play`` (PIL only; matplotlib stays in
the tools that plot): atomic PNG and mp4 writes, the top-down map panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from camworld.files import atomic_write
from camworld.geometry import DEFAULT_HFOV_DEG


def save_png(path, image: np.ndarray, scale: int = 1) -> Path:
    """Write a uint8 (H, W, 3) image atomically, optionally upscaled by an integer nearest-neighbour factor."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
    if scale > 1:
        img = img.repeat(scale, 0).repeat(scale, 1)
    return atomic_write(path, lambda tmp: Image.fromarray(img).save(tmp))


def write_mp4(path, frames: np.ndarray, fps: int = 8) -> Path:
    """Write uint8 (T, H, W, 3) frames to an mp4 with moviepy (imported here, at the edge)."""
    from moviepy import ImageSequenceClip

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = ImageSequenceClip(list(frames), fps=fps)
    return atomic_write(path, lambda tmp: clip.write_videofile(tmp, fps=fps, logger=None, audio=False))


def _disc(img, xy, r, color):
    h, w = img.shape[:2]
    x0, y0 = int(round(xy[0])), int(round(xy[1]))
    yy, xx = np.ogrid[max(0, y0 - r):min(h, y0 + r + 1), max(0, x0 - r):min(w, x0 + r + 1)]
    m = (xx - x0) ** 2 + (yy - y0) ** 2 <= r * r
    img[max(0, y0 - r):min(h, y0 + r + 1), max(0, x0 - r):min(w, x0 + r + 1)][m] = color


def _line(img, a, b, color, r=0):
    n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
    for t in np.linspace(0, 1, n):
        _disc(img, (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])), r, color)


def map_panel(scene, poses, j, retrieved, mem_poses, size: int, px_per_m: int = 8, radius_m: float = 6.0):
    """Top-down map crop around the camera: path so far, view fan, retrieved frames (yellow)."""
    base = scene.map_image(px_per_m=px_per_m).copy()
    to_px = lambda xy: scene.world_to_map(np.asarray(xy, float), px_per_m=px_per_m)  # noqa: E731
    for a, b in zip(poses[:j], poses[1:j + 1]):
        _line(base, to_px(a[:2]), to_px(b[:2]), (255, 255, 255))
    x, y, yaw = poses[j]
    half = np.deg2rad(DEFAULT_HFOV_DEG) / 2
    for s in (-half, half):
        _line(base, to_px((x, y)), to_px((x + 4 * np.cos(yaw + s), y + 4 * np.sin(yaw + s))), (255, 80, 80))
    for m in mem_poses[retrieved]:
        tip = m[:2] + 1.2 * np.array([np.cos(m[2]), np.sin(m[2])])
        _line(base, to_px(m[:2]), to_px(tip), (255, 220, 0))
        _disc(base, to_px(m[:2]), 2, (255, 220, 0))
    _disc(base, to_px((x, y)), 3, (255, 80, 80))
    c = to_px((x, y)).astype(int)
    r = int(radius_m * px_per_m)
    pad = np.pad(base, ((r, r), (r, r), (0, 0)))
    crop = pad[c[1]:c[1] + 2 * r, c[0]:c[0] + 2 * r]
    idx = np.linspace(0, 2 * r - 1, size).astype(int)
    return crop[idx][:, idx]
