"""``camworld eval goal-cue``: can an agent tell from the frames that it has arrived, in each world?

A goal-view agent that must stop at the goal (``stop_to_arrive``) has one cue: the view there looks like the goal
frame. In the learned world the goal frame is one the world generated during the tour, so whether the view at the
goal pose looks like it again is the world's memory. This drives the goal-pose oracle (perfect steering, blind)
through the same held-out episodes in each world and records ``info["goal_psnr"]`` (current frame against the goal
frame) at every view, split by whether the camera is within the arrival tolerances (``info["at_goal"]``). Per world:
the median PSNR at and away from the goal, and the AUC of PSNR as an "arrived" detector (0.5: the frames do not
tell; 1.0: a threshold on the raw PSNR separates every view at the goal from every other view).

    camworld eval goal-cue --episodes 48 --task-kwargs excursion=glance-away stop_to_arrive=true \\
        --max-episode-steps 8 --out eval_goal_cue
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from camworld import threads
from camworld.files import write_text

from .benchmark import CONDITIONS, EVAL_SEED, GoalPoseOracle, env_id, env_kwargs, learned_frame_size

NAMES = {"twin": "CamWorld twin", "learned": "learned, default retrieval", "learned-recent": "learned, `recent`"}


def auc(pos, neg) -> float:
    """P(a random positive scores above a random negative), ties half (Mann-Whitney U / (n_pos n_neg)); nan if
    either side is empty. Infinite values (an exact copy) rank above every finite one."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def measure(condition: str, args) -> dict:
    """The oracle through ``args.episodes`` held-out episodes of one world; the goal-PSNR of every view."""
    from .training import evaluate

    at, away, t0 = [], [], time.perf_counter()
    views = {}   # episode -> [start, goal, last] frames, for the first args.pictures episodes

    def record(ep, obs, info):
        (at if info["at_goal"] else away).append(float(info["goal_psnr"]))
        if ep < args.pictures:
            views.setdefault(ep, [obs["frame"]] * 3)[1:] = [obs["goal"], obs["frame"]]

    res = evaluate(GoalPoseOracle, env_id(condition, "goal-view"), episodes=args.episodes, seed=args.seed,
                   env_kwargs=env_kwargs(condition, args), on_view=record)
    med = lambda v: float(np.median(v)) if len(v) else float("nan")   # noqa: E731
    return {"condition": condition, "episodes": args.episodes, "oracle_success": res["success_rate"],
            "views_at_goal": len(at), "views_away": len(away),
            "exact_at_goal": float(np.mean(np.isinf(at))) if at else float("nan"),
            "psnr_at_goal": med(at), "psnr_away": med(away), "auc": auc(at, away),
            "seconds": time.perf_counter() - t0, "stills": [np.stack(views[ep]) for ep in sorted(views)]}


def still_grid(rows) -> np.ndarray:
    """One row per episode; per world three frames (start, goal, the view where the oracle stopped), worlds
    separated by a white bar, frames by a grey line."""
    per_world = [np.asarray(r["stills"]) for r in rows]                  # (E, 3, H, W, 3) each
    E, _, H, W, _ = per_world[0].shape
    gap, bar = np.full((H, 1, 3), 128, np.uint8), np.full((H, 6, 3), 255, np.uint8)
    lines = []
    for e in range(E):
        parts = []
        for w, st in enumerate(per_world):
            parts += ([bar] if w else []) + [st[e, 0], gap, st[e, 1], gap, st[e, 2]]
        lines += [np.concatenate(parts, 1), np.full((2, sum(p.shape[1] for p in parts), 3), 255, np.uint8)]
    return np.concatenate(lines[:-1], 0)


def markdown(rows, args) -> str:
    settings = " ".join(args.task_kwargs) or "the task's defaults"
    lines = [f"Goal-view cue (`camworld eval goal-cue`): the goal-pose oracle on {args.episodes} held-out episodes "
             f"(reset seeds from {args.seed}); task settings: {settings}; max episode steps: "
             f"{args.max_episode_steps or 'registered'}"
             + (f"; learned-world settings: {' '.join(args.world_kwargs)}" if args.world_kwargs else "")
             + ". PSNR of the current frame against the goal frame, split "
             "by whether the camera is within the arrival tolerances (medians; an exact copy is infinite).", "",
             "| world | oracle success | views at / away from the goal | PSNR at the goal | PSNR away | "
             "AUC of PSNR as an arrival detector |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {NAMES[r['condition']]} | {r['oracle_success']:.2f} | {r['views_at_goal']} / "
                     f"{r['views_away']} | {r['psnr_at_goal']:.2f} | {r['psnr_away']:.2f} | {r['auc']:.3f} |")
    return "\n".join(lines) + "\n"


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("what", choices=["goal-cue"], help="goal-cue: how well each world's frames tell arrival")
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--episodes", type=int, default=48)
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="first reset seed (held-out, as camworld eval agents)")
    p.add_argument("--task-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                   help="goal-view settings, e.g. excursion=glance-away stop_to_arrive=true")
    p.add_argument("--max-episode-steps", type=int, default=None)
    p.add_argument("--world-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                   help="settings of the learned worlds only, e.g. warp_fill=mirror")
    p.add_argument("--checkpoint", default=None, help="learned-world checkpoint (default: the shipped one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="folder for goal_cue.md, goal_cue.json and goal_cue.png")
    p.add_argument("--pictures", type=int, default=4,
                   help="episodes shown in goal_cue.png: per world the start frame, the goal frame and the view "
                        "where the oracle stopped (0: none)")
    threads.add_argument(p)


def run(args) -> int:
    if args.episodes < 1:
        raise SystemExit(f"camworld eval goal-cue: --episodes must be >= 1, got {args.episodes}")
    if args.pictures < 0:
        raise SystemExit(f"camworld eval goal-cue: --pictures must be >= 0, got {args.pictures}")
    args.pictures = min(args.pictures, args.episodes)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)   # before the episodes: a bad folder fails at once
    threads.apply(args.threads)
    args.frame_size = learned_frame_size(args.checkpoint)
    rows = []
    for c in args.conditions:
        rows.append(measure(c, args))
        print(f"{NAMES[c]}: AUC {rows[-1]['auc']:.3f} ({rows[-1]['seconds']:.0f} s)", flush=True)
    text = markdown(rows, args)
    print(text)
    if args.out:
        from camworld.viz import save_png

        out = Path(args.out)
        write_text(out / "goal_cue.md", text)
        write_text(out / "goal_cue.json", json.dumps([{k: v for k, v in r.items() if k != "stills"} for r in rows],
                                                     indent=2))
        if args.pictures:
            save_png(out / "goal_cue.png", still_grid(rows), scale=2)
        print(f"wrote {out}/goal_cue.md, goal_cue.json" + (" and goal_cue.png" if args.pictures else ""))
    return 0
