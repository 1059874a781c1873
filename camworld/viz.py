"""Small picture helpers shared by the CLI tools (PIL only; matplotlib stays in the tools that plot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from camworld.files import atomic_write


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
