"""Pilot of a learned depth for the warp (issue 11): a small CNN predicts the z-depth of a 64x64 sim frame
(trained on the training scenes, seeds 0..999, L1 on log depth), then the newest ground-truth frame is warped
to each next chunk's cameras (1) with the assumed depth (the floor, else 6 m; what the world ships), (2) with
the depth the CNN predicts on that first warp, (3) once more on the second warp, (4) with the sim's true depth.
Held-out episodes of the fidelity benchmark's discrete driver. Writes OUT/depth.{safetensors,json}
(``camworld.model.depth``).

    .venv/bin/python scripts/depth_head_pilot.py --steps 1500 --out runs/depth   # ~15 min on one thread

Measured 2026-12-02 (8 episodes, 20 steps): 24.47 / 25.45 / 25.54 / 26.15 dB; held-out |log depth error|
0.26 (a factor 1.30).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from camworld import sim
from camworld.fidelity import make_drives
from camworld.geometry import planar_to_extrinsics
from camworld.metrics import psnr
from camworld.model.depth import DepthNet, points_at_depth
from camworld.model.vae import frames_to_tensor, tensor_to_frames
from camworld.model.warp import _project, _scene_points
from camworld.sim import make_scene, render


def batch(rng, n=32):
    """n training-scene frames at free poses (8 per scene) and their log z-depth."""
    xs, ds = [], []
    for _ in range(n // 8):
        sc = sim.make_scene(int(rng.integers(0, 1000)))
        poses = np.stack([sc.sample_free_pose(rng) for _ in range(8)])
        rgb, dep = sim.render(sc, poses, 64, 64)
        xs.append(rgb)
        ds.append(dep)
    return frames_to_tensor(np.concatenate(xs)), torch.as_tensor(np.concatenate(ds)).log()[:, None]


def train(steps: int, out: Path) -> "DepthNet":
    torch.manual_seed(0)
    net = DepthNet()
    opt = torch.optim.AdamW(net.parameters(), 2e-3)
    rng = np.random.default_rng(0)
    t0 = time.time()
    for i in range(steps):
        x, d = batch(rng)
        loss = (net(x) - d).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        for g in opt.param_groups:
            g["lr"] = 2e-3 * min(1, (steps - i) / (0.3 * steps))
        if i % 100 == 0:
            print(f"step {i} |log err| {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.save(out / "depth", record={
        "command": f"python scripts/depth_head_pilot.py --steps {steps} --out {out}", "steps": steps,
        "batch": 32, "seed": 0, "scenes": "training seeds 0..999", "loss": "L1 on log z-depth",
        "lr": "2e-3 AdamW, linear decay over the last 30%"})
    return net


def evaluate(net, episodes: int, steps: int):
    S, hfov = 64, 52.67
    def points_from_z(tgt, z):  # the target pixels' scene points at z-depth z
        return points_at_depth(_scene_points(tgt, S, hfov, 6.0, True), tgt, z)
    def warp(img, src, tgt, X):
        grid = _project(X, src.expand(1, X.shape[1], 3, 4), S, hfov).reshape(-1, S, S, 2)
        return F.grid_sample(img.expand(len(grid), 3, S, S), grid.float(), mode="bilinear", padding_mode="border", align_corners=False)
    res = {"plane": [], "net(warp)": [], "net2": [], "true": []}
    with torch.no_grad():
        for dr in make_drives("discrete", episodes, steps, S):
            _, depth = render(make_scene(dr.scene_seed), dr.poses, S, S)
            E = torch.as_tensor(planar_to_extrinsics(dr.poses))
            outs = {k: dr.gt.copy() for k in res}
            for j in range(1, len(dr.poses), 2):
                sl = slice(j, min(len(dr.poses), j + 2))
                tgt = E[sl][None]
                img = frames_to_tensor(dr.gt[j - 1])[None]
                X0 = _scene_points(tgt, S, hfov, 6.0, True)
                w0 = warp(img, E[j - 1], tgt, X0)
                outs["plane"][sl] = tensor_to_frames(w0)
                z = net(w0).exp()[:, 0].double().reshape(1, -1, S * S)
                w1 = warp(img, E[j - 1], tgt, points_from_z(tgt, z))
                outs["net(warp)"][sl] = tensor_to_frames(w1)
                z2 = net(w1).exp()[:, 0].double().reshape(1, -1, S * S)
                outs["net2"][sl] = tensor_to_frames(warp(img, E[j - 1], tgt, points_from_z(tgt, z2)))
                zt = torch.as_tensor(depth[sl], dtype=torch.float64).reshape(1, -1, S * S)
                outs["true"][sl] = tensor_to_frames(warp(img, E[j - 1], tgt, points_from_z(tgt, zt)))
            for k in res:
                res[k].append(psnr(outs[k][1:], dr.gt[1:]))
    for k, v in res.items():
        print(f"{k}: {np.mean(v):.2f} dB (episodes: {', '.join(f'{x:.1f}' for x in v)})")
    return res


def held_out_error(net, n: int = 8) -> float:
    """Mean |log predicted - log true| depth on held-out scenes."""
    rng = np.random.default_rng(123)
    errs = []
    with torch.no_grad():
        for _ in range(n):
            sc = sim.make_scene(sim.EVAL_SEED_OFFSET + int(rng.integers(0, 10**6)))
            poses = np.stack([sc.sample_free_pose(rng) for _ in range(8)])
            rgb, dep = sim.render(sc, poses, 64, 64)
            errs.append(np.abs(net(frames_to_tensor(rgb))[:, 0].numpy() - np.log(dep)).mean())
    return float(np.mean(errs))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500, help="training steps (batches of 32 frames)")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--rollout-steps", type=int, default=20)
    p.add_argument("--out", default="runs/depth")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net = train(args.steps, out).eval()
    print(f"held-out |log depth error| {held_out_error(net):.3f}")
    evaluate(net, args.episodes, args.rollout_steps)


if __name__ == "__main__":
    main()
