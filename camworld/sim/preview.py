"""``camworld preview``: a PNG contact sheet of every scene style with a top-down map.

Each row is one style: a few views along a random trajectory (frame borders coloured to match),
then the top-down map with the trajectory and the field-of-view fan of each view.
"""

from __future__ import annotations

import argparse

import numpy as np

from camworld import geometry
from camworld.sim.render import render
from camworld.sim.trajectories import random_trajectory
from camworld.sim.worldgen import STYLES, make_scene

_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4"]


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--out", default="preview.png", help="output PNG path")
    p.add_argument("--seed", type=int, default=0, help="scene seed (each style uses this seed)")
    p.add_argument("--styles", nargs="*", default=list(STYLES), choices=STYLES, metavar="STYLE",
                   help=f"styles to show (default all: {' '.join(STYLES)})")
    p.add_argument("--views", type=int, default=4, help="views per style")
    p.add_argument("--size", type=int, default=128, help="view size in pixels")
    p.add_argument("--frames", type=int, default=400, help="trajectory length in frames (30 fps)")


def make_preview(out: str, seed: int = 0, styles=STYLES, views: int = 4, size: int = 128, frames: int = 400) -> str:
    """Write the contact sheet to ``out`` (PNG) and return the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    if views < 1 or views > len(_COLOURS):
        raise ValueError(f"views must be in 1..{len(_COLOURS)}, got {views}")
    rows = len(styles)
    fig, axes = plt.subplots(rows, views + 1, figsize=(2.0 * (views + 1.4), 2.05 * rows),
                             gridspec_kw=dict(width_ratios=[1] * views + [1.4]), squeeze=False)
    for r, style in enumerate(styles):
        scene = make_scene(seed, style)
        poses = random_trajectory(scene, frames, np.random.default_rng([seed, r]))
        idx = np.linspace(0, frames - 1, views).round().astype(int)
        rgb, _ = render(scene, poses[idx], size, size)
        for c in range(views):
            ax = axes[r, c]
            ax.imshow(rgb[c], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_edgecolor(_COLOURS[c]), s.set_linewidth(3)
            ax.set_title(f"t={idx[c] / 30:.1f}s", fontsize=7, pad=2)
        axes[r, 0].set_ylabel(f"{style}\nseed {seed}", fontsize=9)
        ax = axes[r, views]
        ppm = 6
        ax.imshow(scene.map_image(ppm), interpolation="nearest")
        path = scene.world_to_map(poses[:, :2], ppm)
        ax.plot(path[:, 0], path[:, 1], "-", color="white", lw=1.6)
        ax.plot(path[:, 0], path[:, 1], "-", color="black", lw=0.7)
        o, left, right = geometry.fov_edge_rays(poses[idx])
        for c in range(views):
            fan = np.stack([o[c], o[c] + 5.0 * left[c], o[c] + 5.0 * right[c]])
            ax.add_patch(Polygon(scene.world_to_map(fan, ppm), closed=True, facecolor=_COLOURS[c], alpha=0.45,
                                 edgecolor=_COLOURS[c], lw=1))
        ax.set_xticks([]), ax.set_yticks([])
        xmin, xmax, ymin, ymax = scene.extent
        ax.set_title(f"{xmax - xmin:.0f} x {ymax - ymin:.0f} m", fontsize=7, pad=2)
    fig.tight_layout(pad=0.4)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def run(args) -> int:
    path = make_preview(args.out, args.seed, args.styles, args.views, args.size, args.frames)
    print(f"wrote {path}")
    return 0
