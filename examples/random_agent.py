"""A random-walking camera in the learned world; saves every generated segment to an mp4.

    python examples/random_agent.py --steps 40 --out random_agent.mp4
"""

import argparse

import gymnasium as gym
import numpy as np

import camworld  # noqa: F401  (registers the environments)
from camworld.agents import RandomWalkPolicy
from camworld.viz import write_mp4


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="ContextAsMemory-v0")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="random_agent.mp4")
    args = p.parse_args(argv)

    env = gym.make(args.env)
    policy = RandomWalkPolicy(env, seed=args.seed)
    obs, info = env.reset(seed=args.seed)
    segments = [info["frames"]]                      # the start frame
    for _ in range(args.steps):
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        segments.append(info["frames"])              # all frames_per_step frames, not just obs
        if terminated or truncated:
            break
    env.close()
    frames = np.concatenate(segments)
    write_mp4(args.out, frames, fps=env.metadata["render_fps"])
    print(f"{len(frames)} frames of scene {info['scene_seed']} -> {args.out}")


if __name__ == "__main__":
    main()
