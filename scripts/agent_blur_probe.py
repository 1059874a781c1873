"""Saved goal-view agents scored in the twin with both frames Gaussian-blurred before the policy sees them.

How much of what an agent trained in the generated world loses in the real one is detail (texture that the real
world has and the generated one does not draw)? Blur the real frames at scoring time only, the agents unchanged,
and see how their twin success moves (docs/benchmarks/agents.md, fourteenth session).

    python scripts/agent_blur_probe.py runs/gastop_dagger_all/agents learned --seeds 0 1 2 3 4 --sigmas 0 1 2 3 4 \\
        --task-kwargs excursion=glance-away stop_to_arrive=true --max-episode-steps 8
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from camworld.agents import evaluate
from camworld.agents.benchmark import EVAL_SEED, load_agent_file, task_kwargs
from camworld.agents.features import GaussianBlur


def blurred(sigma: float):
    """obs -> obs with every frame (H, W, 3) uint8 low-passed by ``GaussianBlur(sigma)`` (None for sigma 0)."""
    if sigma == 0:
        return None
    blur = GaussianBlur(sigma)

    def one(v):
        x = torch.as_tensor(np.asarray(v), dtype=torch.float32).permute(2, 0, 1)[None]
        return blur(x)[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

    return lambda obs: {k: one(v) for k, v in obs.items()}


def load(folder: Path, condition: str, seed: int):
    """The saved agent of (condition, seed) in an agents/ folder: a DAgger policy on pixels or a PPO zip."""
    dagger, zipped = folder / f"{condition}_s{seed}_policy.safetensors", folder / f"{condition}_s{seed}.zip"
    if not (dagger.exists() or zipped.exists()):
        raise SystemExit(f"no saved agent {dagger.name} or {zipped.name} in {folder}")
    return load_agent_file(dagger if dagger.exists() else zipped)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("agents", help="a camworld eval agents output's agents/ folder (DAgger on pixels, or PPO)")
    p.add_argument("condition", help="learned, learned-recent or twin")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--sigmas", nargs="+", type=float, default=[0.0, 1.0, 2.0])
    p.add_argument("--episodes", type=int, default=48)
    p.add_argument("--task-kwargs", nargs="*", default=["excursion=glance-away", "stop_to_arrive=true"])
    p.add_argument("--max-episode-steps", type=int, default=8)
    args = p.parse_args(argv)
    kw = {**task_kwargs(args.task_kwargs), "max_episode_steps": args.max_episode_steps}
    print(f"| agents | test-time blur (px) | twin success per seed {args.seeds} | mean |\n|---|---|---|---|")
    for sigma in args.sigmas:
        rates = []
        for seed in args.seeds:
            agent = load(Path(args.agents), args.condition, seed)
            r = evaluate(agent, "CamWorld-GoalView-v0", episodes=args.episodes, seed=EVAL_SEED, env_kwargs=kw,
                         obs_transform=blurred(sigma))
            rates.append(r["success_rate"])
        print(f"| {args.condition} | {sigma:g} | {' / '.join(f'{x:.3f}' for x in rates)} | {np.mean(rates):.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
