"""How much is left for a better depth net: the shipped world's teacher-forced figure with its depth net, with the
sim's *true* depth of every memory frame in its place (an oracle no user has), and with the assumed depth.
Held-out episodes of the fidelity benchmark, ground truth in memory (``camworld.fidelity.teacher_forced``).

    .venv/bin/python scripts/depth_oracle_world.py [--episodes 8] [--steps 12] [--threads 1]

The oracle swaps ``ModelFrames._depths`` for a lookup of the sim's depth at each memory frame's pose, shrunk to the
net's side as the net's own input is (area average)."""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from camworld import fidelity
from camworld.model.frames import ModelFrames
from camworld.sim import make_scene, render
from camworld.world import load_world_model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--drivers", nargs="*", default=["discrete", "continuous", "pose"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_world_model(None, device="cpu")
    size = model.depth_net.size
    print("| driver | assumed depth | depth net (shipped) | true depth (oracle) | VAE ceiling |\n|---|---|---|---|---|")
    for driver in args.drivers:
        drives = fidelity.make_drives(driver, args.episodes, args.steps, model.cfg.frame_size, seed=0)
        truth = {}
        for d in drives:
            _, dep = render(make_scene(d.scene_seed), d.poses, model.cfg.frame_size, model.cfg.frame_size)
            dep = F.avg_pool2d(torch.as_tensor(dep)[:, None], model.cfg.frame_size // size)[:, 0].numpy()
            for pose, z in zip(d.poses, dep):
                truth[tuple(np.round(pose, 6))] = z.reshape(-1)
        res = {"assumed": fidelity.teacher_forced(model, drives, "fov+nonadj", sampler={"learned_depth": False}),
               "net": fidelity.teacher_forced(model, drives, "fov+nonadj")}
        shipped = ModelFrames._depths
        ModelFrames._depths = lambda self, banks, context: [
            np.stack([truth[tuple(np.round(pose, 6))] for pose in bank.poses[idx]]) for bank, idx in zip(banks, context)]
        try:
            res["true"] = fidelity.teacher_forced(model, drives, "fov+nonadj")
        finally:
            ModelFrames._depths = shipped
        cells = [f"{r['model']['psnr']:.2f}" for r in res.values()]
        print(f"| {driver} | " + " | ".join(cells) + f" | {res['net']['vae_ceiling']['psnr']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
