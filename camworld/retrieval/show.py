"""``camworld retrieval show``: a picture of one retrieval on a sim trajectory (paper §3.3, Fig. 3 b).

Left: the scene's top-down map with the trajectory (coloured by time), the target camera's view
fan, the FOV candidates (paper rule), and the selected context frames, numbered oldest to newest,
each with a short arrow for its view direction. Right: the target frame and thumbnails of the
selected frames, each labelled with its number, age in frames, and true co-visibility with the
target segment (fraction of its pixels the frame really sees, from the sim's depth).

The query is picked to be interesting: the target segment late in the trajectory whose FOV
candidates include the most frames from long ago (a revisit).
"""

from __future__ import annotations

import numpy as np

from camworld import geometry
from camworld.retrieval.covis import covisibility
from camworld.retrieval.fov import fov_overlap
from camworld.retrieval.strategies import STRATEGIES, retrieve


def add_arguments(p):
    p.add_argument("action", choices=["show"], help="show: draw one retrieval to a PNG")
    p.add_argument("--out", default="retrieval.png", help="output PNG path")
    p.add_argument("--scene-seed", type=int, default=0)
    p.add_argument("--style", default="rooms", help="sim style (see camworld preview)")
    p.add_argument("--strategy", default="fov+nonadj", choices=sorted(STRATEGIES))
    p.add_argument("--k", type=int, default=8, help="context size (newest frame included)")
    p.add_argument("--frames", type=int, default=2400, help="sim frames of the trajectory (30 fps)")
    p.add_argument("--stride", type=int, default=4, help="sim frames per model frame")
    p.add_argument("--segment", type=int, default=4, help="frames in the target segment")
    p.add_argument("--seed", type=int, default=0, help="trajectory and strategy randomness")


def pick_query(poses: np.ndarray, seg: int, min_age: int = 40) -> int:
    """Start of the segment (in the last half) whose FOV candidates hold the most frames >= min_age old."""
    N = len(poses)
    best, best_s = -1, N - seg
    for s in range(N // 2, N - seg + 1, max(1, seg // 2)):
        ov = fov_overlap(poses[: max(1, s - min_age)], poses[s:s + seg]).any(1).sum()
        if ov > best:
            best, best_s = ov, s
    return best_s


def _fan(pose, length: float, hfov_deg: float) -> np.ndarray:
    o, l, r = geometry.fov_edge_rays(pose, hfov_deg)
    return np.stack([o, o + length * l, o + length * r])


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from camworld.sim import make_scene, random_trajectory, render

    if args.k < 1:
        raise SystemExit(f"--k must be >= 1, got {args.k}")
    scene = make_scene(args.scene_seed, args.style)
    rng = np.random.default_rng(args.seed)
    poses = random_trajectory(scene, args.frames, rng)[:: args.stride]
    seg = max(1, int(args.segment))
    if len(poses) < seg + 2:
        raise SystemExit(f"trajectory too short ({len(poses)} model frames) for a {seg}-frame segment; raise --frames")
    s = pick_query(poses, seg)
    mem, tgt = poses[:s], poses[s:s + seg]
    times = np.arange(s, dtype=np.float64)
    sel = retrieve(args.strategy, mem, times, tgt, args.k, np.random.default_rng(args.seed))
    cand = np.flatnonzero(fov_overlap(mem, tgt).any(1))

    rgb, depth = render(scene, np.concatenate([tgt, mem[sel]]))
    seg_rgb, sel_rgb = rgb[:seg], rgb[seg:]
    cv = covisibility(depth[:seg], tgt, depth[seg:], mem[sel]).mean(0)          # (S,) per selected frame

    ppm = 16.0
    img = scene.map_image(ppm)
    to_px = lambda xy: scene.world_to_map(np.asarray(xy)[..., :2], ppm)         # noqa: E731

    n_thumbs = len(sel) + 1
    cols = 3
    rows = int(np.ceil(n_thumbs / cols))
    fig = plt.figure(figsize=(13, max(6.5, 2.2 * rows)))
    gs = fig.add_gridspec(rows, 1 + cols, width_ratios=[3.2] + [1] * cols, wspace=0.08, hspace=0.35)
    ax = fig.add_subplot(gs[:, 0])
    ax.imshow(img)
    # zoom to where the action is: the target fans, the candidates and the selected frames
    focus = np.concatenate([_fan(tgt, 6.0, geometry.DEFAULT_HFOV_DEG).reshape(-1, 2), mem[cand, :2], mem[sel, :2]])
    pts = to_px(focus)
    lo, hi = pts.min(0) - 3 * ppm, pts.max(0) + 3 * ppm
    side = max(hi - lo)                                     # square view
    mid = 0.5 * (lo + hi)
    lo, hi = mid - side / 2, mid + side / 2
    ax.set_xlim(max(lo[0], 0), min(hi[0], img.shape[1]))
    ax.set_ylim(min(hi[1], img.shape[0]), max(lo[1], 0))
    tp = to_px(poses[: s + seg])
    ax.scatter(tp[:, 0], tp[:, 1], c=np.arange(len(tp)), cmap="viridis", s=6, zorder=2)
    ax.plot(tp[:, 0], tp[:, 1], color="k", lw=0.4, alpha=0.5, zorder=1)
    cp = to_px(mem[cand])
    ax.scatter(cp[:, 0], cp[:, 1], s=22, facecolors="none", edgecolors="orange", lw=0.9, zorder=3,
               label=f"FOV candidates ({len(cand)})")
    for j in range(seg):
        ax.add_patch(Polygon(to_px(_fan(tgt[j], 6.0, geometry.DEFAULT_HFOV_DEG)), closed=True,
                             color="red", alpha=0.12 if j else 0.25, zorder=2))
    ax.plot(*to_px(tgt).T, color="red", lw=2.0, zorder=4, label="target segment (fan: 6 m)")
    for i, m in enumerate(sel):
        p = to_px(mem[m])
        d = to_px(mem[m, :2] + 1.2 * np.array([np.cos(mem[m, 2]), np.sin(mem[m, 2])])) - p
        ax.annotate("", xy=(p[0] + d[0], p[1] + d[1]), xytext=(p[0], p[1]), zorder=5,
                    arrowprops=dict(arrowstyle="-|>", color="blue", lw=1.2))
        ax.scatter([p[0]], [p[1]], s=18, color="blue", zorder=6)
        off = -0.6 * d / max(np.hypot(*d), 1e-9) * ppm      # label behind the camera, away from its arrow
        ax.text(p[0] + off[0], p[1] + off[1], str(i + 1), ha="center", va="center", fontsize=8, color="blue",
                zorder=7, bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec="blue", lw=0.8))
    ax.scatter([], [], s=18, color="blue", label="selected (numbered oldest first; arrow = view)")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.85)
    ax.set_title(f"{args.style} seed {args.scene_seed}: '{args.strategy}', k={args.k}; "
                 f"memory {s} frames, colour = time", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])

    thumbs = [(seg_rgb[0], f"TARGET (t={s})", "red")]
    for i, m in enumerate(sel):
        tag = " newest" if m == s - 1 else ""
        thumbs.append((sel_rgb[i], f"#{i + 1}  age {s - m}{tag}\ntrue co-vis {cv[i]:.0%}", "blue"))
    for j, (im, label, colour) in enumerate(thumbs):
        a = fig.add_subplot(gs[j // cols, 1 + j % cols])
        a.imshow(im)
        a.set_title(label, fontsize=7, color=colour)
        a.set_xticks([])
        a.set_yticks([])
        for sp in a.spines.values():
            sp.set_color(colour)
            sp.set_linewidth(2 if j == 0 else 1)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {args.out}: {len(sel)} frames selected by '{args.strategy}' from {s} "
          f"({len(cand)} FOV candidates); mean true co-visibility {cv.mean():.2f}")
    return 0
