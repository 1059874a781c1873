"""Does one shared memory make many cameras see one world? History-context PSNR, shared vs separate.

    python -c "from camworld.envs.multi_agent import bench_shared_memory as b; b('runs/dit/model.safetensors', 8)"
    camworld bench multi-agent --checkpoint runs/dit/model.safetensors --episodes 8   # once wired into the CLI

Two cameras, A and B, in one held-out sim scene, both starting from real frames. Each run is done
twice with the same seeds: in ONE world with one memory (``World(shared_memory=True)``) and in two
separate worlds (``World(shared_memory=False)``, as two single-agent envs would be).

* **revisit** (B comes to what A generated): A starts at pose P and turns left by ``theta``
  (10 degrees per frame), generating views nobody has seen. B starts at the same spot facing the
  other way, and only afterwards turns right through 180 degrees, ending at A's start view. For
  B's frames at A's poses: *history PSNR* = B's frame vs A's frame at the same pose (A's real start
  frame for the last one, reported also alone as ``start``); *GT PSNR* = B's frame vs the sim.
  With a shared memory B retrieves A's frames (``a_in_context``: the share of B's retrieved frames
  that A made, during those steps); with separate memories it cannot.
* **return** (A turns away and back while B moves elsewhere): A rotates by ``theta`` and retraces
  its path; B, at another free pose of the same scene, turns around at the same time (one batched
  pass). History PSNR = A's return frames vs its own outgoing frames: does sharing the memory with
  another camera disturb A's own recall?

Metrics: PSNR/SSIM per episode (mean over the frames), then mean and 95% interval over episodes.

Letters: E episodes, L frames of a path, H/W frame size.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from camworld import threads
from camworld.metrics import mean_ci95, psnr, ssim
from camworld.retrieval import DEFAULT_STRATEGY
from camworld.sim.trajectories import there_and_back, turn_in_place

DEG_PER_FRAME = 10.0


def _turn(start: np.ndarray, degrees: float) -> np.ndarray:
    """Poses (L, 3) turning in place from ``start`` by ``degrees`` at 10 degrees per frame (start excluded)."""
    return turn_in_place(start, np.deg2rad(degrees), DEG_PER_FRAME, min_frames=0)


def make_episodes(episodes: int, frame_size: int, theta: float = 120.0, seed: int = 0) -> list:
    """Held-out scenes with A's start P, B's start (P turned by 180 degrees) and B's far pose for "return"."""
    from camworld.sim import EVAL_SEED_OFFSET, make_scene, render, scene_caption

    rng, out, attempt = np.random.default_rng([seed, 4242]), [], 0
    while len(out) < episodes:
        scene_seed = EVAL_SEED_OFFSET + 104_729 * attempt + seed
        attempt += 1
        scene = make_scene(scene_seed)
        pa = scene.sample_free_pose(rng)
        pb = pa + np.array([0.0, 0.0, np.pi])
        far = scene.sample_free_pose(rng)
        ep = {"scene_seed": scene_seed, "prompt": scene_caption(scene, rng), "pa": pa, "pb": pb, "far": far,
              "a_path": _turn(pa, theta), "b_path": _turn(pb, -180.0),
              "a_return": np.concatenate([there_and_back(_turn(pa, theta)), pa[None]]),
              "b_elsewhere": _turn(far, 2 * theta * (1 if rng.random() < 0.5 else -1))}
        poses = np.concatenate([pa[None], pb[None], far[None], ep["a_path"], ep["b_path"]])
        rgb, _ = render(scene, poses, frame_size, frame_size)
        ep["gt_start"] = {"pa": rgb[0], "pb": rgb[1], "far": rgb[2]}
        ep["gt_b"] = rgb[3 + len(ep["a_path"]):]
        out.append(ep)
    return out


def _world(model, shared: bool, k: int, retrieval: str, ep: dict, starts: tuple, seed: int):
    from camworld.world import World

    w = World(model, num_worlds=2, retrieval=retrieval, context_size=k, shared_memory=shared, device=model.device)
    for i, name in enumerate(starts):
        w.reset(i, ep["gt_start"][name], ep[name], prompt=ep["prompt"], seed=seed + i)
    return w


def _run(world, paths: list, chunk: int, record_sources: bool = False):
    """Step the cameras through their paths (None = idle), ``chunk`` frames per step, all active cameras
    in one pass. -> (frames per camera (L, H, W, 3), per-step retrieved-source lists of camera 1)."""
    L = max(len(p) for p in paths if p is not None)
    out = [[] for _ in paths]
    sources = []
    for j in range(0, L, chunk):
        active = np.array([p is not None and j < len(p) for p in paths])
        T = min(chunk, L - j)
        targets = np.zeros((len(paths), T, 3))
        for i, p in enumerate(paths):
            if active[i]:
                seg = p[j:j + T]
                targets[i] = np.concatenate([seg, np.repeat(seg[-1:], T - len(seg), 0)])
        frames = world.step(targets, active=active)
        for i, p in enumerate(paths):
            if active[i]:
                out[i].append(frames[i, : len(p[j:j + T])])
        if record_sources and active[1]:
            sources.append(np.asarray(world.memory_of(1).sources)[world.last_retrieved[1]])
    return [np.concatenate(f) if f else None for f in out], sources


def _scores(gen: np.ndarray, ref: np.ndarray) -> tuple:
    return (float(np.mean([psnr(a, b) for a, b in zip(gen, ref)])),
            float(np.mean([ssim(a, b) for a, b in zip(gen, ref)])))


def run_episode(model, ep: dict, shared: bool, k: int, retrieval: str, chunk: int, seed: int) -> dict:
    """Both scenarios of one episode in one memory mode -> per-episode metrics."""
    # revisit: A turns away (B idle), then B turns through A's views to A's start view (A idle)
    w = _world(model, shared, k, retrieval, ep, ("pa", "pb"), seed)
    (a, _), _ = _run(w, [ep["a_path"], None], chunk)
    (_, b), src = _run(w, [None, ep["b_path"]], chunk, record_sources=True)
    nA = len(ep["a_path"])
    b_in_a = b[-(nA + 1):]                          # B's frames at A's poses theta ... 10 degrees, then 0 (A's start)
    a_ref = np.concatenate([a[::-1], ep["gt_start"]["pa"][None]])
    gt_ref = ep["gt_b"][-(nA + 1):]
    steps_in_a = int(np.ceil((nA + 1) / chunk))
    in_ctx = np.concatenate([s[:-1] for s in src[-steps_in_a:]])      # retrieved frames except B's own newest
    hp, hs = _scores(b_in_a, a_ref)
    gp, gs = _scores(b_in_a, gt_ref)
    row = {"revisit_history_psnr": hp, "revisit_history_ssim": hs, "revisit_gt_psnr": gp, "revisit_gt_ssim": gs,
           "revisit_start_psnr": psnr(b_in_a[-1], a_ref[-1]), "a_in_context": float(np.mean(in_ctx == 0)),
           "a_gt_psnr": _scores(a, ep["gt_b"][-(nA + 1):-1][::-1])[0]}
    w.memories[0].close()
    # return: A turns away and back while B turns around elsewhere, in one batched pass
    w = _world(model, shared, k, retrieval, ep, ("pa", "far"), seed)
    (a, _), _ = _run(w, [ep["a_return"], ep["b_elsewhere"]], chunk)
    n = len(ep["a_path"])
    out_frames = np.concatenate([ep["gt_start"]["pa"][None], a[:n]])           # poses 0 .. theta
    back = a[n:]                                                              # poses theta-10 .. 0
    rp, rs = _scores(back, out_frames[:-1][::-1])
    row.update(return_history_psnr=rp, return_history_ssim=rs)
    for m in w.memories:
        m.close()
    return row


def bench_shared_memory(checkpoint=None, episodes: int = 8, *, theta: float = 120.0, context_size: int = 8,
                        retrieval: str = DEFAULT_STRATEGY, frames_per_step: int | None = None, seed: int = 0,
                        device="auto", progress: bool = True) -> dict:
    """Shared vs separate memories for two cameras (module doc). -> results dict (``markdown`` formats it).

    Args:
        checkpoint: world-model checkpoint (None = the shipped default).
        episodes: episodes (held-out scenes) per memory mode.
        theta: how far A turns away, degrees (multiple of 10, <= 180).
        frames_per_step: frames generated per pass (None: the model's ``target_frames``).
    """
    import torch

    from camworld.world import load_world_model

    if not 10 <= theta <= 180:
        raise ValueError(f"theta must be in [10, 180] degrees, got {theta}")
    model = load_world_model(checkpoint, device=device)
    chunk = int(frames_per_step or model.cfg.train.target_frames)
    eps = make_episodes(int(episodes), model.cfg.frame_size, theta, seed)
    rows = {"shared": [], "separate": []}
    t0 = time.perf_counter()
    with torch.no_grad():
        for e, ep in enumerate(eps):
            for mode in rows:
                shared = mode == "shared"
                rows[mode].append(run_episode(model, ep, shared, context_size, retrieval, chunk, seed + 2 * e))
            if progress:
                print(f"episode {e + 1}/{len(eps)}: " + ", ".join(
                    f"{m} revisit {rows[m][-1]['revisit_history_psnr']:.2f} dB" for m in rows), flush=True)
    summary = {}
    for mode, rs in rows.items():
        summary[mode] = {key: mean_ci95([r[key] for r in rs]) for key in rs[0]}
    return {"checkpoint": str(checkpoint), "preset": model.cfg.preset, "frame_size": model.cfg.frame_size,
            "episodes": len(eps), "theta": theta, "context_size": context_size, "retrieval": retrieval,
            "frames_per_step": chunk, "seed": seed, "seconds": time.perf_counter() - t0,
            "summary": summary, "per_episode": rows}


METRICS = (
    ("revisit_history_psnr", "revisit: B vs A at A's poses, PSNR"),
    ("revisit_history_ssim", "revisit: B vs A at A's poses, SSIM"),
    ("revisit_start_psnr", "revisit: B at A's start view vs A's real frame, PSNR"),
    ("revisit_gt_psnr", "revisit: B vs ground truth, PSNR"),
    ("a_in_context", "revisit: share of B's context frames made by A"),
    ("a_gt_psnr", "A's own frames vs ground truth, PSNR"),
    ("return_history_psnr", "return: A back vs A out, PSNR"),
    ("return_history_ssim", "return: A back vs A out, SSIM"),
)


def markdown(results: dict) -> str:
    s = results["summary"]
    lines = ["| metric | shared memory | separate memories |", "|---|---|---|"]
    for key, name in METRICS:
        cells = []
        for mode in ("shared", "separate"):
            m, ci = s[mode][key]
            cells.append(f"{m:.3f} ± {ci:.3f}" if "ssim" in key or key == "a_in_context" else f"{m:.2f} ± {ci:.2f}")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- `camworld bench multi-agent`


def bench_arguments(p: argparse.ArgumentParser):
    p.add_argument("--checkpoint", default=None, help="world-model checkpoint (default: the shipped one)")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--theta", type=float, default=120.0, help="degrees A turns away")
    p.add_argument("--context-size", type=int, default=8)
    p.add_argument("--retrieval", default=DEFAULT_STRATEGY)
    p.add_argument("--frames-per-step", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    threads.add_argument(p)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")


def bench(args) -> int:
    threads.apply(args.threads)
    res = bench_shared_memory(args.checkpoint, args.episodes, theta=args.theta, context_size=args.context_size,
                              retrieval=args.retrieval, frames_per_step=args.frames_per_step, seed=args.seed,
                              device=args.device)
    print(markdown(res))
    print(f"\n{res['episodes']} episodes, {res['preset']} preset at {res['frame_size']}x{res['frame_size']}, "
          f"k={res['context_size']}, {res['retrieval']}, {res['seconds']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_arguments(ap)
    raise SystemExit(bench(ap.parse_args()))
