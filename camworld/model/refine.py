"""What no camera saw, repaired: a small CNN over the learned world's frame where no context frame saw the target.

The learned world shows the context's own pixels wherever a context camera saw the target pixel (the paste,
``camworld.model.warp.reproject``), and the DiT's decoded frame elsewhere. There, at env speed, the DiT draws
little more than the smooth fill its warp start began from (teacher-forced on held-out scenes, the unseen
pixels of its frames score 16.36 / 16.80 / 16.97 dB against 16.27 / 16.60 / 16.88 for a smooth fill alone;
docs/benchmarks/fidelity.md, scripts/unseen_split.py). ``RefineNet`` is trained on exactly that situation: the learned world run
teacher-forced on training scenes, its decoded frame, the paste's composite (filled where it holds no pixel)
and the two masks in, the sim's frame out (``camworld train --stage refine``, ``camworld.train.refine``). It
predicts a correction of the decoded frame; the composite's seen pixels are pasted over its output, so it only
ever changes what no context frame saw.

Measured (2026-12-06, docs/benchmarks/fidelity.md): after 1,000 steps on 13,824 frames the held-out unseen pixels
go from 17.98 to 18.04 dB, flat since step 750: a regression can only move them towards their conditional mean,
where the network's frame already is. No shipped checkpoint names a refine net; ``refine=True`` uses one.

Files: ``NAME.safetensors`` + ``NAME.json`` (``{"format": "camworld-refine-net", "version": 1, "config":
{"channels": c}, "record": {...}}``); no pickle.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from camworld.model.netfile import CoordUNet, load_net, save_net

FORMAT = "camworld-refine-net"
VERSION = 1
IN_CHANNELS = 3 + 3 + 1 + 1       # decoded frame, filled composite, seen, filled (then the pixel coordinates)


class RefineNet(CoordUNet):
    """A small U-Net (frames of side divisible by 8): decoded frame, filled composite (B, 3, S, S) each in
    [-1, 1], seen and filled masks (B, 1, S, S) -> a correction (B, 3, S, S) of the decoded frame. The output
    layer starts at zero: an untrained net returns the decoded frame."""

    def __init__(self, c: int = 16):
        super().__init__(IN_CHANNELS, 3, c)
        self.channels = int(c)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    def forward(self, decoded, composite, seen, filled):
        dt = decoded.dtype
        return self.unet(torch.cat([decoded, composite, seen.to(dt), filled.to(dt)], 1))

    def save(self, path, record: dict | None = None) -> Path:
        return save_net(self, path, FORMAT, VERSION, {"channels": self.channels}, record)


def load_refine_net(path, device="cpu") -> RefineNet:
    """Read NAME.safetensors + NAME.json written by ``RefineNet.save``; clear errors for missing or foreign files."""
    return load_net(path, FORMAT, VERSION, "refine net", lambda cfg: RefineNet(int(cfg["channels"])), device)


def refine(net: RefineNet, decoded, composite, seen, filled) -> torch.Tensor:
    """Frames (N, 3, S, S) in [-1, 1]: decoded + the net's correction, clamped, in the net's dtype; the
    composite's pixels wherever a context frame saw the target (seen (N, S, S) bool). The composite is the
    filled one (``ModelFrames._filled_composite``), filled (N, S, S) where it held pixels before the fill."""
    dt = next(net.parameters()).dtype
    cl = dt != torch.float32
    prep = lambda x: x.to(dt).contiguous(memory_format=torch.channels_last) if cl else x.to(dt)
    d, c = prep(decoded), prep(composite)
    s, f = prep(seen[:, None].to(dt)), prep(filled[:, None].to(dt))
    out = (d + net(d, c, s, f)).clamp(-1, 1)
    return torch.where(seen[:, None], c, out)
