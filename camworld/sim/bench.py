"""``camworld bench render``: renderer throughput, with an untextured baseline raycast in the same run.

The baseline shares the ray casting (``cast_columns``) and paints flat colours: one colour per wall
skin and face, a flat ground and a flat sky. The ratio textured / baseline is what textures, fog
and the sky panorama cost, measured on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from camworld import geometry
from camworld.sim.render import MAX_LAYERS, _check_poses, _rgba_to_rgb, cast_columns, render
from camworld.sim.textures import mean_colour, pack_rgb
from camworld.sim.trajectories import random_trajectory
from camworld.sim.worldgen import STYLES, make_scene


def render_flat(scene, poses, height: int = 64, width: int = 64, hfov_deg: float = geometry.DEFAULT_HFOV_DEG):
    """Untextured baseline: the same visible walls as :func:`render`, painted in flat colours.

    Returns rgb uint8 (N, H, W, 3) and depth float32 (N, H, W) like ``render``.
    """
    P = _check_poses(poses)
    H, W = int(height), int(width)
    f = geometry.focal_from_hfov(W, hfov_deg)
    cy, cam_h = H / 2.0, geometry.CAMERA_HEIGHT
    hits = cast_columns(scene, P, W, hfov_deg, tan_top=cy / f)
    cols = scene._cache.get("flat")
    if cols is None:
        base = np.stack([np.zeros(3)] + [mean_colour(s) for s in scene.wall_skins])
        cols = scene._cache["flat"] = pack_rgb(np.stack([base, base * 0.78], 1))   # (S+1, 2)
        scene._cache["flat_bg"] = pack_rgb(np.stack([mean_colour(scene.floor_skins[0]),
                                                     np.asarray(scene.fog_rgb)]))
    ground, sky = scene._cache["flat_bg"]
    N = len(P)
    r_floor = int(np.floor(cy - 0.5)) + 1
    rgb = np.empty((N, H, W), np.uint32)
    rgb[:, :r_floor] = sky
    rgb[:, r_floor:] = ground
    depth = np.full((N, H, W), 50.0, np.float32)
    for k in range(MAX_LAYERS - 1, -1, -1):
        d = hits["depth"][..., k]
        valid = np.isfinite(d)
        if not valid.any():
            continue
        dd = np.where(valid, d, 1.0).astype(np.float32)
        rs = np.where(valid, np.clip(np.ceil(cy - f * (hits["top"][..., k] - cam_h) / dd - 0.5), 0, H), H).astype(np.int32)
        re = np.where(valid, np.clip(np.ceil(cy + f * cam_h / dd - 0.5), 0, H), 0).astype(np.int32)
        r0, r1 = int(rs.min()), int(re.max())
        if r1 <= r0:
            continue
        rr = np.arange(r0, r1, dtype=np.int32)[None, :, None]
        mask = rr >= rs[:, None, :]
        mask &= rr < re[:, None, :]
        c = cols[hits["skin"][..., k], hits["side"][..., k]][:, None, :]
        np.copyto(rgb[:, r0:r1], np.broadcast_to(c, mask.shape), where=mask)
        np.copyto(depth[:, r0:r1], np.broadcast_to(dd[:, None, :], mask.shape), where=mask)
    out = np.empty((N, H, W, 3), np.uint8)
    _rgba_to_rgb(rgb, out)
    return out, depth


def _fps(fn, scenes, poses, size, batch, repeats):
    """Frames per wall-clock second and per CPU second of this process for ``fn`` over every scene,
    best of ``repeats`` rounds. CPU time is less sensitive to other jobs sharing the machine."""
    best, best_cpu = np.inf, np.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for scene, P in zip(scenes, poses):
            for a in range(0, len(P), batch):
                fn(scene, P[a:a + batch], size, size)
                n += len(P[a:a + batch])
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return n / best, n / best_cpu


def bench_arguments(p: argparse.ArgumentParser):
    p.add_argument("--frames", type=int, default=512, help="frames per style (batch-512 rows)")
    p.add_argument("--single", type=int, default=64, help="frames per style for the batch-1 row")
    p.add_argument("--repeats", type=int, default=3, help="rounds; the best is reported")
    p.add_argument("--styles", nargs="*", default=list(STYLES), choices=STYLES, metavar="STYLE")
    p.add_argument("--seed", type=int, default=0)


def bench(args) -> int:
    scenes = [make_scene(args.seed, s) for s in args.styles]
    poses = [random_trajectory(sc, args.frames, np.random.default_rng(args.seed)) for sc in scenes]
    for sc, P in zip(scenes, poses):  # build lookup tables outside the timing
        render(sc, P[:1]), render_flat(sc, P[:1])
    single = [P[: args.single] for P in poses]
    rows = [
        ("textured", 64, 1, _fps(render, scenes, single, 64, 1, args.repeats)),
        ("textured", 64, 512, _fps(render, scenes, poses, 64, 512, args.repeats)),
        ("textured", 128, 512, _fps(render, scenes, poses, 128, 512, args.repeats)),
        ("flat baseline", 64, 512, _fps(render_flat, scenes, poses, 64, 512, args.repeats)),
        ("flat baseline", 128, 512, _fps(render_flat, scenes, poses, 128, 512, args.repeats)),
    ]
    print(f"render benchmark: {len(scenes)} styles ({', '.join(args.styles)}), seed {args.seed}, "
          f"{args.frames} frames per style, best of {args.repeats}")
    print(f"{'renderer':<15}{'size':>9}{'batch':>7}{'frames/s':>11}{'frames/cpu-s':>14}")
    for name, size, batch, (fps, cpu) in rows:
        print(f"{name:<15}{f'{size}x{size}':>9}{batch:>7}{fps:>11.0f}{cpu:>14.0f}")
    print(f"textured / flat baseline (same run, wall-clock): 64x64 {rows[1][3][0] / rows[3][3][0]:.2f}, "
          f"128x128 {rows[2][3][0] / rows[4][3][0]:.2f}")
    return 0
