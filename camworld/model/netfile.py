"""Small networks beside a checkpoint (the depth net, the refine net): NAME.safetensors (weights) + NAME.json
(``{"format": ..., "version": ..., "config": {...}, "record": {...}}``), written atomically; no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn


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
