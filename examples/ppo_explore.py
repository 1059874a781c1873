"""PPO explores the sim twin: 8 envs in one batched world, a CNN fit for 64x64 frames.

    python examples/ppo_explore.py --timesteps 20000
"""

import argparse

from stable_baselines3 import PPO

from camworld.agents import FrameCNN, evaluate
from camworld.envs import make_sb3_vec_env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="CamWorld-Explore-v0")
    p.add_argument("--timesteps", type=int, default=1024)
    p.add_argument("--num-envs", type=int, default=8)
    args = p.parse_args(argv)

    venv = make_sb3_vec_env(args.env, num_envs=args.num_envs, seed=0)
    model = PPO("CnnPolicy", venv, n_steps=64, batch_size=128, n_epochs=4, ent_coef=0.01, seed=0, verbose=1,
                policy_kwargs=dict(features_extractor_class=FrameCNN))
    model.learn(total_timesteps=args.timesteps)
    print(evaluate(model, args.env, episodes=3))


if __name__ == "__main__":
    main()
