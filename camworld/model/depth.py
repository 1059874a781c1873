"""A learned depth for the warp: a small CNN that predicts the z-depth of every pixel of a frame.

The warp start and the paste (``camworld.model.warp``) reproject context frames to a target camera with
an assumed depth: the floor, else a plane 6 m ahead. That is exact for turns and wrong under
translation. ``DepthNet`` is trained on the sim's own renders and depths (training scenes only,
``camworld train --stage depth``, ``camworld.train.depth``). The learned world (``ModelFrames``,
``diffusion.depth_net``) runs it once on every memory frame it reprojects, at the net's own side (``size``;
``depth_of``), keeps that depth with the frame (``MemoryBank.derived``), and reprojects each frame at its own
depth: the frame's pixels are lifted to 3D and splatted into the target camera, nearest surface first
(``warp.splat_depth``), and a target pixel the frame did not see takes nothing from it. So what a frame looks
like from a camera depends on the frame and the camera alone, and a return to a pose reprojects memory the
same way as the first visit did. (The first design, until 2026-12-02, ran the net on the target's
assumed-depth warp instead; that depth changed with whatever was warped, and walk returns lost their
self-consistency: docs/benchmarks/fidelity.md.)

Files: ``NAME.safetensors`` (weights) + ``NAME.json`` (``{"format": "camworld-depth-net", "version": 1,
"config": {"channels": c, "size": s}, "record": {...}}``; files without ``size`` run at 64); no pickle.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from camworld.model.netfile import CoordUNet, load_net, save_net

FORMAT = "camworld-depth-net"
VERSION = 1


class DepthNet(CoordUNet):
    """A small U-Net (256k parameters at c = 16): RGB in [-1, 1] (B, 3, H, W), H and W divisible by 8,
    plus pixel coordinates -> log z-depth (B, 1, H, W) in metres."""

    def __init__(self, c: int = 16, size: int = 64):
        super().__init__(3, 1, c)
        self.channels = int(c)
        if int(size) < 8 or int(size) % 8:
            raise ValueError(f"a depth net's size must be a multiple of 8, got {size}")
        self.size = int(size)   # the frame side it was trained at and runs at (``depth_of`` resizes to it)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

    def save(self, path, record: dict | None = None) -> Path:
        return save_net(self, path, FORMAT, VERSION, {"channels": self.channels, "size": self.size}, record)


def load_depth_net(path, device="cpu") -> DepthNet:
    """Read NAME.safetensors + NAME.json written by ``DepthNet.save``; clear errors for missing or foreign files."""
    return load_net(path, FORMAT, VERSION, "depth net",    # files before the size field: 64
                    lambda cfg: DepthNet(int(cfg["channels"]), int(cfg.get("size", 64))), device)


def depth_of(net: DepthNet, frames: torch.Tensor) -> torch.Tensor:
    """z-depth in metres (B, s, s) of frames (B, 3, S, S) in [-1, 1], at the net's own size s (frames are
    area-averaged down to it first; S a multiple of s), in the frames' dtype."""
    S = frames.shape[-1]
    if S % net.size:
        raise ValueError(f"frames of side {S} do not shrink to the depth net's size {net.size}")
    x = F.avg_pool2d(frames, S // net.size) if S != net.size else frames
    return net(x)[:, 0].exp()
