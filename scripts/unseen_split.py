"""Where the learned world's teacher-forced error is: pixels a context frame saw (the paste's) against pixels
no context frame saw (the network's own), and on the latter the network against the smooth fill its warp start
began from. Held-out episodes at env motion, ground truth in memory (the fidelity benchmark's drivers).

    python scripts/unseen_split.py [--episodes 8] [--steps 12] [--threads 1] [--checkpoint PATH] [--warp-fill F]
"""

import argparse

import numpy as np
import torch

from camworld import fidelity
from camworld.world import World, load_world_model


def psnr_of(se: float, n: float) -> float:
    return float(10 * np.log10(255 ** 2 / max(se / max(n, 1), 1e-12)))


def grad_energy(x: np.ndarray, m: np.ndarray) -> float:
    """Summed squared finite differences (x and y) of frames x (..., H, W, 3) between neighbours both in mask m
    (..., H, W): the numerator of the fidelity benchmark's sharpness ratio, restricted to a region."""
    gx = ((np.diff(x, axis=-2) ** 2).sum(-1) * (m[..., 1:] & m[..., :-1])).sum()
    gy = ((np.diff(x, axis=-3) ** 2).sum(-1) * (m[..., 1:, :] & m[..., :-1, :])).sum()
    return float(gx + gy)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--warp-fill", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = load_world_model(a.checkpoint)
    print("| driver | pixels no context frame saw | their share of the squared error | PSNR seen / unseen "
          "| unseen: network vs the start's fill alone | unseen sharpness: network / fill (of the sim's) |"
          "\n|---|---|---|---|---|---|")
    for driver in ("discrete", "continuous", "pose"):
        drives = fidelity.make_drives(driver, a.episodes, a.steps, model.cfg.frame_size, seed=0)
        w = World(model, num_worlds=len(drives), **({"warp_fill": a.warp_fill} if a.warp_fill else {}))
        w.source.record_parts = True
        for i, d in enumerate(drives):
            w.reset(i, d.gt[0], d.poses[0], prompt=d.prompt, seed=i)
        poses = np.stack([d.poses for d in drives])
        se_seen = se_unseen = se_fill = n_seen = n_unseen = g_net = g_fill = g_gt = 0.0
        for j in range(1, poses.shape[1], w.frames_per_pass):
            sl = slice(j, j + w.frames_per_pass)
            gen = w.step(poses[:, sl], append=False).astype(np.float64)
            gt = np.stack([d.gt[sl] for d in drives]).astype(np.float64)
            parts = w.source.last_parts
            seen = parts["seen"][..., None]
            err = (gen - gt) ** 2
            se_seen += float((err * seen).sum())
            se_unseen += float((err * ~seen).sum())
            se_fill += float(((parts["composite"].astype(np.float64) - gt) ** 2 * ~seen).sum())
            g_net += grad_energy(gen, ~parts["seen"])
            g_fill += grad_energy(parts["composite"].astype(np.float64), ~parts["seen"])
            g_gt += grad_energy(gt, ~parts["seen"])
            n_seen += float(seen.sum() * 3)
            n_unseen += float((~seen).sum() * 3)
            for i, d in enumerate(drives):
                w.observe(i, d.gt[sl], d.poses[sl])
        frac = n_unseen / (n_seen + n_unseen)
        share = se_unseen / (se_seen + se_unseen)
        print(f"| {driver} | {100 * frac:.1f}% | {100 * share:.0f}% | {psnr_of(se_seen, n_seen):.2f} / "
              f"{psnr_of(se_unseen, n_unseen):.2f} dB | {psnr_of(se_unseen, n_unseen):.2f} vs "
              f"{psnr_of(se_fill, n_unseen):.2f} dB | {g_net / max(g_gt, 1e-12):.2f} / {g_fill / max(g_gt, 1e-12):.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
