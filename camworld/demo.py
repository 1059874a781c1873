"""The demo: a return-to-start episode in the default generated world -> demo.mp4.

The camera starts from a real frame of a held-out scene, turns away by 180 degrees and comes back.
Panels: generated | ground truth | top-down map (trajectory, current view fan, retrieved memory
frames highlighted). Prints the PSNR of the return against the way out, for our retrieval and
for ``recent`` (a DFoT-style window of the newest frames).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from camworld import threads
from camworld.viz import map_panel


def demo_path(out) -> Path:
    """Where the demo's mp4 goes: ``out`` itself if it names an .mp4 file, ``out/demo.mp4`` for a folder (or a
    name without a suffix); its folder is created. Checked before the episode runs, not after."""
    out = Path(out)
    if out.is_dir() or not out.suffix:
        out = out / "demo.mp4"
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"--out must be an .mp4 file or a folder, got {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def run_demo(out="demo.mp4", checkpoint=None, scene_seed=None, theta=180.0, k=10, ours=None,
             device="auto", scale=3, seed=0):
    from camworld.eval import make_episodes
    from camworld.metrics import psnr
    from camworld.retrieval import DEFAULT_STRATEGY
    from camworld.sim import make_scene
    from camworld.viz import save_png, write_mp4
    from camworld.world import World, load_world_model

    t_start = time.perf_counter()
    out = demo_path(out)
    model = load_world_model(checkpoint, device=device)
    ep = make_episodes(f"rot{int(theta)}", 1, model.cfg.frame_size, seed=seed if scene_seed is None else scene_seed)[0]
    scene = make_scene(ep.scene_seed)
    L, n = len(ep.poses), len(ep.poses) // 2
    report, panels = {}, None
    ours = ours or DEFAULT_STRATEGY
    for strategy in (ours, "recent"):
        world = World(model, num_worlds=1, retrieval=strategy, context_size=k, device=device)
        world.reset(0, ep.gt[0], ep.poses[0], prompt=ep.prompt, seed=seed)
        gen, retrieved = [ep.gt[0]], [np.zeros(0, int)]
        for j in range(1, L, 2):
            frames = world.step(ep.poses[None, j:j + 2])[0]
            gen.extend(frames)
            retrieved.extend([world.last_retrieved[0]] * len(frames))
        gen = np.stack(gen)
        back = [psnr(gen[j], gen[L - 1 - j]) for j in range(n + 1, L - 1)]
        report[strategy] = float(np.mean(back))
        if strategy == ours:
            S = model.cfg.frame_size * scale
            mem_poses = world.memories[0].poses
            panels = []
            for j in range(L):
                up = lambda im: im.repeat(scale, 0).repeat(scale, 1)  # noqa: E731
                panels.append(np.concatenate([up(gen[j]), up(ep.gt[j]),
                                              map_panel(scene, ep.poses, j, retrieved[j], mem_poses, S)], 1))
    write_mp4(out, np.stack(panels), fps=8)  # ~ the 7.5 generated frames per second of the env
    # the same story as a still: start, farthest turn, and the way back to the start (one row each)
    rows = sorted({0, n // 2, n, n + (L - 1 - n) // 2, L - 1})
    sheet = np.concatenate([np.pad(panels[j], ((0, 4), (0, 0), (0, 0)), constant_values=255) for j in rows])[:-4]
    still = save_png(Path(out).with_suffix(".png"), sheet)
    print(f"scene {ep.scene_seed} ({scene.style}), rotate {theta:.0f} deg away and back, k = {k}")
    print(f"PSNR of the return vs the way out (history context): {ours}: {report[ours]:.2f} dB | "
          f"recent: {report['recent']:.2f} dB")
    print(f"wrote {out} (generated | ground truth | map with retrieved frames) and {still.name} (frames "
          f"{', '.join(map(str, rows))}) in {time.perf_counter() - t_start:.0f} s")
    return report


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--out", default="demo.mp4", help="the mp4 (the still goes beside it as .png), or a folder")
    p.add_argument("--checkpoint", default=None, help="world-model checkpoint (default: shipped)")
    p.add_argument("--theta", type=float, default=180.0, help="degrees to rotate away before returning")
    p.add_argument("--k", type=int, default=10, help="context size")
    p.add_argument("--retrieval", default=None, help="our retrieval strategy (default: camworld.retrieval.DEFAULT_STRATEGY)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (picks the held-out scene and start)")
    p.add_argument("--device", default="auto")
    threads.add_argument(p)


def run(args):
    threads.apply(args.threads)
    run_demo(args.out, args.checkpoint, theta=args.theta, k=args.k, ours=args.retrieval, device=args.device, seed=args.seed)
    return 0
