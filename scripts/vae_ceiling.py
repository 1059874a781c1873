"""VAE ceiling of one or more checkpoints on one fixed set of held-out sim frames (docs/benchmarks/data.md).

    python scripts/vae_ceiling.py runs/a/model.safetensors runs/b/model.safetensors [--frames 256] [--size 32]

The frames: ``camworld.data.vae_batch`` of the held-out scene range (seeds >= 1,000,000) at random free poses,
from one fixed generator, so every checkpoint is scored on the same pixels. Prints PSNR / SSIM mean and a 95%
interval over frames, and with --json writes them."""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from camworld.data import vae_batch
from camworld.metrics import psnr, ssim
from camworld.model import WorldModel


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--size", type=int, default=None, help="frame size (default: the checkpoint's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    out, held = {}, {}
    for path in a.checkpoints:
        m = WorldModel.load(path, device="cpu")
        size = a.size or m.cfg.vae.frame_size
        if size not in held:
            held[size] = vae_batch(np.random.default_rng([a.seed, 77]), a.frames, size, heldout=True)
        ref = held[size]
        with torch.no_grad():
            rec = m.decode(m.encode(ref))
        p = np.array([psnr(x, y) for x, y in zip(rec, ref)])
        s = np.array([ssim(x, y) for x, y in zip(rec, ref)])
        ci = 1.96 * p.std(ddof=1) / np.sqrt(len(p))
        out[path] = {"psnr": float(p.mean()), "psnr_ci95": float(ci), "ssim": float(s.mean()), "frames": len(p)}
        print(f"{path}: PSNR {p.mean():.2f} ± {ci:.2f} dB, SSIM {s.mean():.3f} ({len(p)} held-out frames)", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
