"""VAE ceiling of one or more checkpoints on one fixed set of held-out sim frames (docs/benchmarks/data.md).

    python scripts/vae_ceiling.py runs/a/model.safetensors runs/b/model.safetensors [--frames 256] [--size 32] \
        [--png grid.png]

The frames: ``camworld.data.vae_batch`` of the held-out scene range (seeds >= 1,000,000) at random free poses,
from one fixed generator, so every checkpoint is scored on the same pixels. Prints PSNR / SSIM mean and a 95%
interval over frames, the pooled sharpness ratio (image-gradient energy of the reconstructions over the frames'; 1.0
= as sharp as the sim) with a bootstrap interval, and with --json writes them. --png: the first 8 frames, one row
per checkpoint under the ground truth, at 4x."""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from camworld.data import vae_batch
from camworld.fidelity import sharpness, sharpness_ratio
from camworld.metrics import psnr, ssim
from camworld.model import WorldModel


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--size", type=int, default=None, help="frame size (default: the checkpoint's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None, help="write a comparison grid (ground truth, then each checkpoint)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    out, held, rows = {}, {}, []
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
        sharp, sharp_ci = sharpness_ratio(sharpness(rec), sharpness(ref))
        out[path] = {"psnr": float(p.mean()), "psnr_ci95": float(ci), "ssim": float(s.mean()), "sharpness": sharp,
                     "sharpness_ci95": sharp_ci, "frames": len(p)}
        print(f"{path}: PSNR {p.mean():.2f} ± {ci:.2f} dB, SSIM {s.mean():.3f}, sharpness {sharp:.3f} ± {sharp_ci:.3f} "
              f"({len(p)} held-out frames)", flush=True)
        if not rows:
            rows.append(np.concatenate(list(ref[:8]), axis=1))
        rows.append(np.concatenate(list(rec[:8]), axis=1))
    if a.png:
        from PIL import Image

        grid = np.concatenate(rows, axis=0)
        Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST).save(a.png)
        print(f"wrote {a.png}: ground truth, then {', '.join(a.checkpoints)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
