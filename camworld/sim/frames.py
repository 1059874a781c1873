"""The ground-truth frame source of ``camworld.world.World``: render the source scene.

The twin (``CamWorld-v0``) is a ``World`` like the learned one: same memory, clocks, newest-frame
rule and retrieval, so ``info["retrieved"]`` means the same in both. Only the picture differs:
the sim renders the true frames at the target poses and needs none of the retrieved frames.
Its cameras are planar (level at ``geometry.CAMERA_HEIGHT``): ``World`` hands it (x, y, yaw) poses
and refuses 6-DoF cameras for it.

Letters: B worlds stepped (active), T target frames, H/W frame size.
"""

from __future__ import annotations

import numpy as np

from camworld.motion import DEFAULT_FRAME_STRIDE
from camworld.sim.render import render


class SimFrames:
    """Renders world i's scene (given at ``reset``) at its target poses; any number of frames per pass."""

    name = "sim"
    frames_per_pass = None
    cameras = "planar"             # the renderer's cameras: (x, y, yaw), level at eye height

    def __init__(self, frame_size=(64, 64), frame_stride: int = DEFAULT_FRAME_STRIDE):
        H, W = (int(v) for v in frame_size)
        self.frame_size = (H, W)
        self.frame_stride = int(frame_stride)
        self.scenes: dict = {}         # world -> Scene

    def reset(self, i: int, seed: int, scene=None):
        if scene is None:
            raise ValueError("the sim backend renders a procedural scene: reset needs scene=make_scene(seed); "
                             "to start from your own image use the learned world (ContextAsMemory-v0, "
                             "backend='model')")
        self.scenes[i] = scene

    def make_frames(self, worlds, banks, context, targets: np.ndarray, prompts) -> tuple:
        """targets (B, T, 3) planar poses -> (uint8 (B, T, H, W, 3), None: no latents)."""
        if np.ndim(targets) != 3 or np.shape(targets)[-1] != 3:
            raise ValueError(f"the sim renders planar cameras: targets must be (B, T, 3) poses (x, y, yaw), got shape "
                             f"{np.shape(targets)}; 6-DoF cameras need a learned world trained on them")
        H, W = self.frame_size
        return np.stack([render(self.scenes[i], tp, H, W)[0] for i, tp in zip(worlds, targets)]), None
