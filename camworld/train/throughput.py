"""``camworld bench train``: samples/s of the DiT stage, split into data (render + retrieve +
encode) and the optimisation step, on fresh weights and cold scene caches (as at a run's start)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from camworld.model import WorldModel, preset, resolve_device
from camworld.train.dit import DiTLoss, encode_batch


@dataclass
class BenchConfig:
    preset: str = "cpu"
    steps: int = 5                   # timed steps (one more, untimed, warms up)
    batch_size: int | None = None    # None: the preset's
    device: str = "auto"


def measure_throughput(bc: BenchConfig) -> dict:
    """Prints the report; -> {"data_s", "step_s", "samples_per_s"} (medians per batch)."""
    from camworld.data import batch_rng, sample_batch

    cfg = preset(bc.preset)
    if bc.batch_size:
        cfg.train.batch_size = bc.batch_size
    model = WorldModel(cfg).to(resolve_device(bc.device))
    opt = torch.optim.AdamW(model.dit.parameters(), lr=1e-4)
    tc = cfg.train
    times = {"data": [], "step": []}
    for step in range(bc.steps + 1):
        t0 = time.perf_counter()
        batch = sample_batch(batch_rng(0, step), tc, cfg.frame_size)
        ctx, mask, cext, z0, text = encode_batch(model, batch, model.device)
        t1 = time.perf_counter()
        loss = DiTLoss(model.dit)(ctx, mask, cext, z0, text, batch.prompts, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if step:  # skip warm-up
            times["data"].append(t1 - t0)
            times["step"].append(t2 - t1)
    d, s = np.median(times["data"]), np.median(times["step"])
    print(f"preset {bc.preset} on {model.device}: batch {tc.batch_size}, up to {tc.context_frames} context + "
          f"{tc.target_frames} target frames (fresh weights; cold scene caches, as at the start of a run)")
    print(f"  data (render + retrieve + encode): {d * 1000:.0f} ms/batch")
    print(f"  optimisation step:                  {s * 1000:.0f} ms/batch")
    print(f"  throughput: {tc.batch_size / (d + s):.1f} samples/s  (data share {d / (d + s):.0%})")
    return {"data_s": float(d), "step_s": float(s), "samples_per_s": float(tc.batch_size / (d + s))}
