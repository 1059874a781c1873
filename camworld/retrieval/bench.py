"""``camworld bench retrieval``: every strategy against ground-truth co-visibility, plus latency.

Quality: held-out sim scenes (indoor styles have walls that hide rooms from each other; outdoor ones
are open), one long random trajectory each at model frame rate (30 fps / ``stride``). Queries are
target segments late in the trajectory with the past as memory (as at inference, Algorithm 2).
Each strategy picks k frames (newest included); ``metrics.py`` scores precision, recall@k, coverage
and redundancy against the sim's depth. The ``oracle`` row is greedy maximum coverage on the TRUE
visibility, a ceiling for coverage that no pose-only rule reaches.

Latency: one query segment (T = 4 poses) against synthetic random-walk memories of 1e2 .. 1e6
frames (0.1 m steps, smoothly wandering yaw), free (sparse) and folded into a ``--box`` square
(dense), each strategy with and without the memory's pose index, in the same run (``scale.py``;
every indexed answer is checked against the exhaustive one). ``--step-worlds sim,tiny`` adds an
env step with 10 against 100,000 frames in memory; ``--ram-frames 1000000`` feeds a bank a whole
episode and reports its RAM.

The defaults take about two to three minutes on two CPU cores; ``--scenes``, ``--frames`` and
``--queries`` make it bigger.
"""

from __future__ import annotations

import time
import zlib

import numpy as np

from camworld.geometry import planar_to_extrinsics
from camworld.retrieval import _kernels, scale
from camworld.retrieval.fov import fov_overlap
from camworld.retrieval.frustum import frustum_overlap
from camworld.retrieval.metrics import METRICS, Episode, make_query, oracle, score
from camworld.retrieval.strategies import STRATEGIES, retrieve


SIX_DOF = " 6-DoF"     # row label suffix: the strategy on the same poses given as extrinsics


STEP_SOURCES = {"sim": "sim twin, 64x64 renders", "tiny": "learned world, tiny preset, 32x32",
                "shipped": "learned world, the shipped checkpoint, 64x64, one world as ContextAsMemory-v0"}


def bench_arguments(p):
    p.add_argument("--styles", default="rooms,countryside,city", help="comma-separated sim styles")
    p.add_argument("--scenes", type=int, default=3, help="held-out scenes per style")
    p.add_argument("--frames", type=int, default=2400, help="sim frames per trajectory (30 fps)")
    p.add_argument("--stride", type=int, default=4, help="sim frames per model frame (as training)")
    p.add_argument("--queries", type=int, default=20, help="target segments per trajectory")
    p.add_argument("--segment", type=int, default=4, help="frames per target segment")
    p.add_argument("--ks", default="1,5,10,20,30", help="context sizes k (newest frame included)")
    p.add_argument("--strategies", default="all", help="comma-separated names, or 'all'")
    p.add_argument("--variants", default="fov+nonadj:fill=none,fov+nonadj+far:fill=none",
                   help="extra rows NAME:PARAM=VALUE[:PARAM=VALUE], comma-separated ('' for none)")
    p.add_argument("--thr", type=float, default=0.1, help="co-visibility that makes a frame truly relevant")
    p.add_argument("--grid", type=int, default=16, help="sampled pixels per image side for co-visibility")
    p.add_argument("--sizes", default="100,10000,1000000", help="memory sizes for the latency table ('' skips)")
    p.add_argument("--reps", type=int, default=7, help="timed calls per latency cell (median)")
    p.add_argument("--box", type=float, default=100.0,
                   help="also time a dense memory: the same walk folded into a BOX x BOX metre square (0 skips)")
    p.add_argument("--six-dof", default="fov+nonadj,coverage",
                   help="comma-separated strategies to run also with the 6-DoF frustum rule (the planar poses given "
                        "as extrinsics; '' for none): rows 'NAME 6-DoF'")
    p.add_argument("--step-worlds", default="", help="comma-separated frame sources for the env-step ratio "
                   "(sim, tiny, shipped = the shipped checkpoint as ContextAsMemory-v0 steps it; '' skips)")
    p.add_argument("--step-sizes", default="10,100000", help="memory sizes the env-step ratio compares")
    p.add_argument("--steps", type=int, default=100, help="env steps per world for the ratio")
    p.add_argument("--ram-frames", type=int, default=0, help="feed a MemoryBank this many frames and report its "
                   "RAM (0 skips)")
    p.add_argument("--ram-capacity", type=int, default=10_000, help="the bank's RAM capacity (frames) for --ram-frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-quality", action="store_true", help="latency table only")
    p.add_argument("--markdown", default=None, help="also write the tables to this file")


def _ints(s: str) -> list:
    return [int(float(x)) for x in s.split(",") if x.strip()]


def _value(v: str):
    try:
        return float(v) if any(c in v for c in ".e") else int(v)
    except ValueError:
        return v


def _strategies(s: str, variants: str = "", six_dof: str = "") -> dict:
    """-> {row label: (strategy name, params)} from --strategies, --variants and --six-dof."""
    names = list(STRATEGIES) if s == "all" else [x.strip() for x in s.split(",") if x.strip()]
    rows = {n: (n, {}) for n in names}
    rows.update({n + SIX_DOF: (n, {}) for n in (x.strip() for x in six_dof.split(",")) if n})
    for spec in (x.strip() for x in variants.split(",") if x.strip()):
        name, *kv = spec.split(":")
        try:
            rows[spec] = (name, {k: _value(v) for k, v in (item.split("=", 1) for item in kv)})
        except ValueError:
            raise SystemExit(f"bad variant {spec!r}: use NAME:PARAM=VALUE[:PARAM=VALUE]") from None
    bad = sorted({n for n, _ in rows.values() if n not in STRATEGIES})
    if bad:
        raise SystemExit(f"unknown strategies {bad}; choose from {sorted(STRATEGIES)}")
    return rows


def episodes(styles, n_scenes, n_frames, stride, grid, seed):
    """Render one long held-out trajectory per (style, scene): list of Episode."""
    from camworld.sim import EVAL_SEED_OFFSET, make_scene, random_trajectory, render

    eps = []
    for si, style in enumerate(styles):
        for j in range(n_scenes):
            scene = make_scene(EVAL_SEED_OFFSET + 1000 * seed + 17 * si + j, style)
            rng = np.random.default_rng([seed, si, j])
            poses = random_trajectory(scene, n_frames, rng)[::stride]
            _, depth = render(scene, poses)
            eps.append(Episode(poses, depth, f"{style}/{scene.seed}", bool(scene.indoor), grid))
    return eps


def quality(eps, rows, ks, n_queries, seg_len, thr, seed):
    """-> {(group, strategy, k): {metric: mean}}, {group: ground-truth summary}."""
    acc, truth_stats = {}, {}
    for e, ep in enumerate(eps):
        group = "indoor" if ep.indoor else "outdoor"
        N = len(ep.poses)
        rng = np.random.default_rng([seed, 99, e])
        starts = np.sort(rng.choice(np.arange(N // 4, N - seg_len + 1), size=n_queries, replace=False))
        for qi, s in enumerate(starts):
            q = make_query(ep, int(s), seg_len, thr)
            ts = truth_stats.setdefault(group, {"queries": 0, "truth": 0, "memory": 0})
            ts["queries"] += 1
            ts["truth"] += len(q.truth)
            ts["memory"] += len(q.memory)
            times = np.arange(s, dtype=np.float64)
            for label in list(rows) + ["oracle"]:
                for k in ks:
                    if label == "oracle":
                        sel = oracle(q, k)
                    else:
                        name, params = rows[label]
                        r = np.random.default_rng([seed, e, qi, k, zlib.crc32(name.encode())])
                        mem, tgt = ep.poses[:s], ep.poses[s:s + seg_len]
                        if label.endswith(SIX_DOF):                      # the same poses, as full extrinsics
                            mem, tgt = planar_to_extrinsics(mem), planar_to_extrinsics(tgt)
                        sel = retrieve(name, mem, times, tgt, k, r, **params)
                    acc.setdefault((group, label, k), []).append(score(ep, q, sel, k))
    means = {}
    for key, rows in acc.items():
        means[key] = {m: float(np.nanmean([r[m] for r in rows])) if any(np.isfinite(r[m]) for r in rows) else np.nan
                      for m in METRICS + ("n",)}
    return means, truth_stats


def agreement(eps, n_queries, seg_len, seed) -> dict:
    """The 6-DoF frustum rule against the planar FOV rule on the episodes' planar poses: per (memory,
    target) pair, how often they agree; per query, the Jaccard index of the two candidate sets."""
    pair, jac = [], []
    for e, ep in enumerate(eps):
        rng = np.random.default_rng([seed, 98, e])
        N = len(ep.poses)
        for s in rng.choice(np.arange(N // 4, N - seg_len + 1), size=n_queries, replace=False):
            mem, tgt = ep.poses[:s], ep.poses[s:s + seg_len]
            a = fov_overlap(mem, tgt)
            b = frustum_overlap(planar_to_extrinsics(mem), planar_to_extrinsics(tgt))
            pair.append((a == b).mean())
            ca, cb = a.any(1), b.any(1)
            jac.append((ca & cb).sum() / max((ca | cb).sum(), 1))
    return {"pair": float(np.mean(pair)), "jaccard": float(np.mean(jac)), "queries": len(jac)}


def random_walk(M: int, rng: np.random.Generator, step: float = 0.1) -> np.ndarray:
    """Synthetic memory poses (M, 3): a walker at ``step`` metres per frame with a wandering heading."""
    heading = np.cumsum(rng.normal(0.0, 0.08, M))
    xy = np.cumsum(step * np.stack([np.cos(heading), np.sin(heading)], -1), 0)
    yaw = heading + 0.4 * np.sin(np.arange(M) / 40.0)  # look around a little while walking
    return np.concatenate([xy, yaw[:, None]], 1)


def fold(poses: np.ndarray, box: float) -> np.ndarray:
    """Reflect positions into [0, box]^2 (a walker bouncing inside a square scene)."""
    xy = np.abs((poses[:, :2] + box) % (2 * box) - box)
    return np.concatenate([xy, poses[:, 2:]], 1)


def _latency_section(plain: dict, sizes, args) -> str:
    """The latency tables: sparse and dense memories, each strategy without and with the index."""
    out, t1 = [], time.perf_counter()
    for box in ([0.0, args.box] if args.box > 0 else [0.0]):
        lat = scale.latency(plain, sizes, args.reps, args.seed, box=box)
        where = (f"the same walk folded into a {box:g} m square (dense: every spot revisited)" if box
                 else "a free random walk (0.1 m steps; 1e6 frames span ~3 km)")
        table = []
        for n in plain:
            cells = []
            for M in sizes:
                c = lat[(n, M)]
                flag = "" if c["same"] else " DIFFERENT"
                cells.append(f"{c['exhaustive'][0]:.2f} / {c['indexed'][0]:.2f}{flag}")
            table.append([n] + cells)
        build = ", ".join(f"{M:.0e}: {1e3 * s:.0f} ms" for M, s in lat["build"].items())
        same = all(v["same"] for key, v in lat.items() if key != "build")
        out.append(f"\nLatency per query segment (T=4, k=20), ms per call, exhaustive / indexed, best of {args.reps} "
                   f"(half that, min 3, at 1e6); kernels: {_kernels.backend()}; memory: {where}; indexed picks "
                   f"identical to exhaustive: "
                   f"{'all' if same else 'NO'}; index build (once, in bulk): {build}\n"
                   + _table(["strategy"] + [f"M={M:.0e}" for M in sizes], table))
        med = [[n] + [f"{lat[(n, M)]['exhaustive'][1]:.2f} / {lat[(n, M)]['indexed'][1]:.2f}" for M in sizes]
               for n in plain]
        out.append("medians, exhaustive / indexed:\n" + _table(["strategy"] + [f"M={M:.0e}" for M in sizes], med))
    out.append(f"(latency: {time.perf_counter() - t1:.0f} s)")
    return "\n".join(out)


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v, nd=2) -> str:
    return "-" if not np.isfinite(v) else f"{v:.{nd}f}"


def bench(args) -> int:
    rows = _strategies(args.strategies, args.variants, args.six_dof)
    names = list(rows)
    ks = _ints(args.ks)
    if any(k < 1 for k in ks):
        raise SystemExit(f"--ks must be >= 1, got {ks}")
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    parts = []
    t0 = time.perf_counter()
    if not args.no_quality:
        eps = episodes(styles, args.scenes, args.frames, args.stride, args.grid, args.seed)
        means, stats = quality(eps, rows, ks, args.queries, args.segment, args.thr, args.seed)
        parts.append(f"Quality: {len(eps)} trajectories ({', '.join(e.name for e in eps)}), "
                     f"{len(eps[0].poses)} frames each at {30 / args.stride:g} fps, {args.queries} segments of "
                     f"{args.segment} frames each; truly co-visible = sees >= {args.thr:g} of the segment's pixels.")
        for group, st in stats.items():
            parts.append(f"{group}: mean memory {st['memory'] / st['queries']:.0f} frames, mean truly co-visible "
                         f"{st['truth'] / st['queries']:.1f} frames per segment")
        for group in ("indoor", "outdoor"):
            if group not in stats:
                continue
            for metric in METRICS:
                shown = names + (["oracle"] if "coverage" in metric else [])  # oracle: a coverage ceiling only
                tab = [[n] + [_fmt(means[(group, n, k)][metric]) for k in ks] for n in shown]
                parts.append(f"\n{group} — {metric}\n" + _table(["strategy"] + [f"k={k}" for k in ks], tab))
            kk = ks[-1]
            tab = [[n, _fmt(means[(group, n, kk)]["n"], 1)] for n in names]
            parts.append(f"\n{group} — frames returned at k={kk}\n" + _table(["strategy", "frames"], tab))
        if any(n.endswith(SIX_DOF) for n in names):
            ag = agreement(eps, args.queries, args.segment, args.seed)
            parts.append(f"\n6-DoF frustum rule vs the planar FOV rule on these planar poses ({ag['queries']} queries): "
                         f"per (memory, target) pair they agree {ag['pair']:.3f} of the time; candidate sets "
                         f"Jaccard {ag['jaccard']:.2f} (mean over queries)")
        parts.append(f"\n(quality: {time.perf_counter() - t0:.0f} s)")
    sizes = _ints(args.sizes)
    if sizes:
        parts.append(_latency_section({n: rows[n] for n in names if ":" not in n and not n.endswith(SIX_DOF)}, sizes,
                                      args))
    for src in (x.strip() for x in args.step_worlds.split(",") if x.strip()):
        sz = _ints(args.step_sizes)
        r = scale.step_ratio(src, sizes=tuple(sz), steps=args.steps, box=args.box or 100.0, seed=args.seed)
        med = r["median_ms"]
        parts.append(f"\nEnv-like step ({src}: {STEP_SOURCES.get(src, src)}"
                     f"; fov+nonadj through the bank's index, k=8, 4 frames per step; memory a dense walk in a "
                     f"{r['box']:g} m square), median of {r['steps']} steps per world, alternating: "
                     + ", ".join(f"{M:,} frames {med[M]:.2f} ms" for M in sz)
                     + f"; ratio {r['ratio']:.3f}")
    if args.ram_frames:
        t1 = time.perf_counter()
        ram = scale.bank_ram(args.ram_frames, capacity=args.ram_capacity)
        tab = [[f"{r['frames']:,}", f"{r['rss_anon_mb']:.0f}", f"{r['frames_latents']:.0f}", f"{r['per_frame']:.0f}",
                f"{r['index']:.0f}"] for r in ram]
        parts.append(f"\nMemory bank RAM over a {args.ram_frames:,}-frame episode (64x64 frames, 4x16x16 float32 "
                     f"latents, capacity {args.ram_capacity:,} frames in RAM, the rest spilled to disk; 4 frames per "
                     f"step, index synced every step), MB\n"
                     + _table(["frames", "process RssAnon growth", "frames+latents in RAM", "poses/times/extrinsics",
                               "index"], tab) + f"\n(ram: {time.perf_counter() - t1:.0f} s)")
    text = "\n".join(parts)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0
