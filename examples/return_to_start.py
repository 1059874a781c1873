"""Does the world remember? A scripted agent walks back to the start after a forced excursion.

The same episodes run in the learned world and in its ground-truth twin; ``goal_psnr`` compares
the frame on arrival with the start frame (the twin never forgets: its PSNR is the ceiling).

    python examples/return_to_start.py --episodes 5 --out return.mp4
"""

import argparse

import gymnasium as gym
import numpy as np

import camworld  # noqa: F401  (registers the environments)
from camworld.agents import ReturnToStartPolicy
from camworld.viz import write_mp4


def run(env_id, seed):
    env = gym.make(env_id)
    policy = ReturnToStartPolicy(env)
    obs, info = env.reset(seed=seed)
    policy.reset(obs, info)
    frames, done = [info["frames"]], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        frames.append(info["frames"])
        done = terminated or truncated
    env.close()
    return info, np.concatenate(frames)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--out", default="return_to_start.mp4")
    args = p.parse_args(argv)

    for seed in range(args.episodes):
        gen, video = run("ContextAsMemory-Return-v0", seed)
        gt, _ = run("CamWorld-Return-v0", seed)
        print(f"episode {seed}: arrived {gen['arrived']}, PSNR vs start frame: learned world "
              f"{gen['goal_psnr']:.1f} dB, sim twin {gt['goal_psnr']:.1f} dB")
        if seed == 0:
            write_mp4(args.out, video, fps=8)


if __name__ == "__main__":
    main()
