"""What a saved goal-view agent sees and does: a picture of its episodes in one world.

    python scripts/agent_episodes.py AGENT WORLD OUT.png [--episodes 6] [--task-kwargs K=V ...] [--max-episode-steps 8]

AGENT: an SB3 zip (PPO, from ``camworld eval agents``' agents/ folder) or a DAgger policy
(``*_policy.safetensors``, pixel features). WORLD: ``twin`` (``CamWorld-GoalView-v0``), ``learned`` or
``learned-recent`` (``ContextAsMemory-GoalView-v0``, with ``recent`` retrieval for the latter). The episodes are the
benchmark's held-out ones (reset seeds from 100,000).

One row per episode: the goal frame, a white bar, then the view at the start and after every step. Under each
view after a step, a bar says what the agent did to get there: blue = turn left, orange = turn right, grey = any
other move; a stop (noop) is green where it ended the episode at the goal and red where it was wrong. The whole
row has a green frame if the episode succeeded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLOURS = {"turn_left": (40, 90, 230), "turn_right": (240, 140, 20)}
OTHER, STOP_OK, STOP_BAD = (150, 150, 150), (30, 180, 60), (220, 30, 30)


def episodes(agent, world: str, n: int, task: dict, max_steps: int, threads: int) -> list:
    """``n`` held-out episodes of ``world`` as the benchmark builds it (``camworld.agents.benchmark.env_kwargs``):
    per episode the goal frame, every view, the actions by name, and whether it succeeded."""
    import gymnasium as gym

    from camworld.agents.benchmark import EVAL_SEED, env_id, env_kwargs

    args = argparse.Namespace(checkpoint=None, device="auto", max_episode_steps=max_steps, frame_size=None,
                              task_kwargs=[f"{k}={json.dumps(v)}" for k, v in task.items()], world_kwargs=None)
    kw = env_kwargs(world, args)
    if world != "twin":
        kw["torch_threads"] = threads
    env = gym.make(env_id(world, "goal-view"), **kw)
    names = env.unwrapped.discrete_actions
    out = []
    try:
        for ep in range(n):
            obs, info = env.reset(seed=EVAL_SEED + ep)
            views, acts, done = [obs["frame"]], [], False
            while not done:
                a, _ = agent.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = env.step(a)
                views.append(obs["frame"])
                acts.append(names[int(a)])
                done = terminated or truncated
            out.append({"goal": obs["goal"], "views": views, "actions": acts, "arrived": bool(info["arrived"])})
    finally:
        env.close()
    return out


def picture(rows: list, steps: int) -> np.ndarray:
    H, W = rows[0]["goal"].shape[:2]
    bar_h, gap = 4, 2
    cell_w = W + gap
    width = W + 6 + (steps + 1) * cell_w + 4
    lines = []
    for r in rows:
        line = np.full((H + bar_h + 1 + 4, width, 3), 255, np.uint8)
        if r["arrived"]:                         # a green frame round the row
            line[:2], line[-2:], line[:, :2], line[:, -2:] = STOP_OK, STOP_OK, STOP_OK, STOP_OK
        line[2:2 + H, 2:2 + W] = r["goal"]
        x = 2 + W + 6
        for i, v in enumerate(r["views"]):
            line[2:2 + H, x:x + W] = v
            if i:
                a = r["actions"][i - 1]
                last = i == len(r["views"]) - 1
                c = COLOURS.get(a, OTHER) if a != "noop" else (
                    STOP_OK if last and r["arrived"] else STOP_BAD if last else OTHER)
                line[3 + H:3 + H + bar_h, x:x + W] = c
            x += cell_w
        lines += [line, np.full((3, width, 3), 255, np.uint8)]
    return np.concatenate(lines[:-1], 0)


def main(argv=None) -> int:
    from camworld.agents.benchmark import load_agent_file, task_kwargs
    from camworld.viz import save_png

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("agent", type=Path)
    p.add_argument("world", choices=("twin", "learned", "learned-recent"))
    p.add_argument("out", type=Path)
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--max-episode-steps", type=int, default=8)
    p.add_argument("--task-kwargs", nargs="*", default=None, metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    try:
        agent = load_agent_file(args.agent)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"agent_episodes: {e}")
    rows = episodes(agent, args.world, args.episodes, task_kwargs(args.task_kwargs),
                    args.max_episode_steps, args.threads)
    save_png(args.out, picture(rows, args.max_episode_steps), scale=2)
    print(f"wrote {args.out}: {sum(r['arrived'] for r in rows)} of {len(rows)} episodes succeeded; actions: "
          + "; ".join(" ".join(r["actions"]) for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
