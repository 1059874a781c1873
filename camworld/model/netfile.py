"""Small networks beside a checkpoint (the depth net, the refine net): their U-Net, and their files: NAME.safetensors (weights) + NAME.json
(``{"format": ..., "version": ..., "config": {...}, "record": {...}}``), written atomically; no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def _block(i: int, o: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, stride, 1), nn.GroupNorm(4, o), nn.SiLU())


class CoordUNet(nn.Module):
    """The small U-Net of these nets: cin channels plus the pixel coordinates in, cout out, width c at full
    size, 2c at 1/2, 4c at 1/4 and 1/8 (frames whose sides divide by 8)."""

    def __init__(self, cin: int, cout: int, c: int):
        super().__init__()
        self.e1 = nn.Sequential(_block(cin + 2, c), _block(c, c))              # full size
        self.e2 = nn.Sequential(_block(c, 2 * c, 2), _block(2 * c, 2 * c))      # 1/2
        self.e3 = nn.Sequential(_block(2 * c, 4 * c, 2), _block(4 * c, 4 * c))  # 1/4
        self.e4 = nn.Sequential(_block(4 * c, 4 * c, 2), _block(4 * c, 4 * c))  # 1/8
        self.d3 = _block(8 * c, 4 * c)
        self.d2 = _block(6 * c, 2 * c)
        self.d1 = _block(3 * c, c)
        self.out = nn.Conv2d(c, cout, 3, 1, 1)

    def unet(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        if H % 8 or W % 8:
            raise ValueError(f"{type(self).__name__} needs frames whose sides divide by 8, got {H}x{W}")
        yy = torch.linspace(-1, 1, H, dtype=x.dtype, device=x.device).view(1, 1, H, 1).expand(B, 1, H, W)
        xx = torch.linspace(-1, 1, W, dtype=x.dtype, device=x.device).view(1, 1, 1, W).expand(B, 1, H, W)
        a = self.e1(torch.cat([x, yy, xx], 1))
        b = self.e2(a)
        c = self.e3(b)
        d = self.e4(c)
        c = self.d3(torch.cat([F.interpolate(d, scale_factor=2), c], 1))
        b = self.d2(torch.cat([F.interpolate(c, scale_factor=2), b], 1))
        a = self.d1(torch.cat([F.interpolate(b, scale_factor=2), a], 1))
        return self.out(a)


def save_net(net: nn.Module, path, fmt: str, version: int, config: dict, record: dict | None = None) -> Path:
    """Write ``net``'s float32 weights and its JSON; returns the .safetensors path."""
    from safetensors.torch import save_file

    from camworld.files import atomic_write, write_text

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format": fmt}))
    doc = {"format": fmt, "version": version, "config": config, "record": record or {}}
    write_text(path.with_suffix(".json"), json.dumps(doc, indent=2) + "\n")
    return path


def load_net(path, fmt: str, version: int, what: str, build, device="cpu") -> nn.Module:
    """Read a net written by ``save_net``: ``build(config)`` makes the module, its weights are loaded; clear
    errors (naming ``what``, e.g. "depth net") for missing, foreign or mismatched files."""
    from safetensors.torch import load_file

    path = Path(path).with_suffix(".safetensors")
    jpath = path.with_suffix(".json")
    if not path.exists() or not jpath.exists():
        raise FileNotFoundError(f"no {what} at {path} (it needs {path.name} and {jpath.name})")
    try:
        doc = json.loads(jpath.read_text())
    except ValueError as e:
        raise ValueError(f"{what} config {jpath} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt or doc.get("version") != version:
        raise ValueError(f"{jpath} is not a camworld {what} (format {fmt!r}, version {version})")
    net = build(doc.get("config") or {})
    try:
        net.load_state_dict(load_file(str(path)))
    except Exception as e:  # noqa: BLE001 - safetensors / shape errors: say which file
        raise ValueError(f"{what} weights {path} do not match their config ({e})") from None
    return net.to(device).eval()
