"""Quick zero-shot quality of sampler settings on the same held-out episodes (shipped model, 1 thread).

    .venv/bin/python scripts/sampler_quality.py            # the variants below, one JSON line each

Per variant: teacher-forced next-pass PSNR and sharpness, free-rollout GT PSNR at env step 1 and 12 and its
mean sharpness (8 discrete-action drives of 12 env steps), and rot180 history PSNR with fov+nonadj, k = 8
(8 episodes). A small, fast screen; the full figures come from `camworld eval fidelity`.
"""
import json
import time

import numpy as np
import torch

from camworld import fidelity as F
from camworld.eval import make_episodes, run_episodes, score
from camworld.world import load_world_model

VARIANTS = {
    "ref fp32 s8 p2": dict(dtype="float32", sample_steps=8),
    "bf16 s8 p2": dict(dtype="bfloat16", sample_steps=8),
    "fp32 s4 p2": dict(dtype="float32", sample_steps=4),
    "fp32 s2 p2": dict(dtype="float32", sample_steps=2),
    "fp32 s1 p2": dict(dtype="float32", sample_steps=1),
    "fp32 s8 p4": dict(dtype="float32", sample_steps=8, frames_per_pass=4),
    "bf16 s2 p4": dict(dtype="bfloat16", sample_steps=2, frames_per_pass=4),
}


def main():
    torch.set_num_threads(1)
    model = load_world_model(None, device="cpu")
    drives = F.make_drives("discrete", 8, 12, model.cfg.frame_size, seed=3)
    eps = make_episodes("rot180", 8, model.cfg.frame_size, 0)
    for name, kw in VARIANTS.items():
        t0 = time.perf_counter()
        tf = F.teacher_forced(model, drives, "fov+nonadj", sampler=kw)
        curves, _, _ = F.free_rollout(model, drives, "fov+nonadj", sampler=kw)
        frames, _ = run_episodes(model, eps, "fov+nonadj", 8, "history", sampler=kw)
        print(json.dumps({"variant": name, "tf": round(tf["model"]["psnr"], 2),
                          "tf_sharp": round(tf["model"]["sharpness"], 3), "roll_s1": round(curves["psnr"][0], 2),
                          "roll_s12": round(curves["psnr"][-1], 2),
                          "roll_sharp_mean": round(float(np.mean(curves["sharpness"])), 3),
                          "mem_rot180": round(score(eps, frames, "history")["psnr"], 2),
                          "sec": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
