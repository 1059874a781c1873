"""The export stage: merge a DiT run with a (decoder-fine-tuned) VAE of the same latent space into
one shipped checkpoint, optionally float16, with the full training record in its JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from camworld.model import WorldModel
from camworld.train.runtime import apply_overrides


@dataclass
class ExportConfig:
    dit: str                         # the DiT run's model.safetensors
    out: str                         # file stem of the shipped checkpoint (.safetensors + .json)
    vae: str | None = None           # decoder to ship (its encoder must be the DiT's); None: the DiT run's own
    half: bool = False               # store float16 weights
    record: dict = field(default_factory=dict)   # extra entries merged into the record
    overrides: tuple = ()            # SECTION.KEY=VALUE sampling settings (diffusion.* only): not trained


def export_checkpoint(ec: ExportConfig) -> Path:
    """-> the written .safetensors path."""
    dit = WorldModel.load(ec.dit, device="cpu")
    vae = WorldModel.load(ec.vae, device="cpu") if ec.vae else dit
    for (k, a), (_, b) in zip(dit.vae.encoder.state_dict().items(), vae.vae.encoder.state_dict().items()):
        if not torch.equal(a, b):
            raise SystemExit(f"--vae has a different encoder ({k}): its latent space is not the DiT's; "
                             "fine-tune the decoder with --freeze-encoder")
    if vae.cfg.latent_scale != dit.cfg.latent_scale:
        raise SystemExit("--vae has a different latent scale from the DiT's VAE")
    dit.vae.decoder.load_state_dict(vae.vae.decoder.state_dict())
    for item in ec.overrides:  # sampling settings only: they are not trained, so the export may choose them
        if not item.startswith("diffusion."):
            raise SystemExit(f"--stage export --set {item}: only diffusion.* (sampling) settings can change at export")
    apply_overrides(dit.cfg, ec.overrides)
    rec_dit = json.loads(Path(ec.dit).with_suffix(".json").read_text())["record"]
    rec_vae = json.loads(Path(ec.vae).with_suffix(".json").read_text())["record"] if ec.vae else {}
    record = {"dit": rec_dit, "vae": rec_vae, "export_command": " ".join(sys.argv), **ec.record}
    path = dit.save(ec.out, record=record, dtype=torch.float16 if ec.half else torch.float32)
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.1f} MiB) and {path.with_suffix('.json').name}")
    return path
