"""How much a better depth would give the warp: the newest ground-truth frame reprojected to each next
chunk's cameras with the assumed depth (the floor, else a plane 6 m ahead; ``camworld.model.warp``) against
the sim's true depth of the target pixels. Held-out episodes of the fidelity benchmark's discrete driver.

    .venv/bin/python scripts/depth_oracle.py [--episodes 8] [--steps 20]
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from camworld.fidelity import make_drives
from camworld.geometry import planar_to_extrinsics
from camworld.metrics import psnr
from camworld.model.vae import frames_to_tensor, tensor_to_frames
from camworld.model.warp import _project, _scene_points
from camworld.sim import make_scene, render
from camworld.world import load_world_model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--chunk", type=int, default=2, help="frames predicted from each newest frame")
    args = p.parse_args()
    torch.set_num_threads(1)
    hfov, S = load_world_model().cfg.hfov_deg, 64
    res = {"assumed depth": [], "true depth": []}
    for dr in make_drives("discrete", args.episodes, args.steps, S):
        _, depth = render(make_scene(dr.scene_seed), dr.poses, S, S)
        E = torch.as_tensor(planar_to_extrinsics(dr.poses))
        for name in res:
            out = dr.gt.copy()
            for j in range(1, len(dr.poses), args.chunk):
                sl = slice(j, min(len(dr.poses), j + args.chunk))
                tgt = E[sl][None]                                               # (1, T, 3, 4)
                X = _scene_points(tgt, S, hfov, 6.0, True)                      # assumed: floor, else 6 m
                if name == "true depth":                                        # the sim's z-depth per pixel
                    c, R = tgt[..., 3], tgt[..., :3]
                    z = torch.as_tensor(depth[sl], dtype=torch.float64).reshape(1, -1, S * S)
                    rays = (X - c[:, :, None]) @ R                             # camera coordinates
                    X = c[:, :, None] + (rays / rays[..., 2:3] * z[..., None]) @ R.transpose(-1, -2)
                grid = _project(X, E[j - 1].expand(1, X.shape[1], 3, 4), S, hfov).reshape(-1, S, S, 2)
                img = frames_to_tensor(dr.gt[j - 1])[None].expand(len(grid), 3, S, S)
                w = F.grid_sample(img, grid.float(), mode="bilinear", padding_mode="border", align_corners=False)
                out[sl] = tensor_to_frames(w)
            res[name].append(psnr(out[1:], dr.gt[1:]))
    for name, v in res.items():
        print(f"{name}: {np.mean(v):.2f} dB (episodes: {', '.join(f'{x:.1f}' for x in v)})")


if __name__ == "__main__":
    main()
