"""Goal view: PPO with the Dict extractor (current frame + goal frame), against a pose oracle.

The goal frame is a frame the agent saw earlier in the episode; reaching the pose that reproduces
it needs a world that remembers. ``goal_psnr`` on arrival says how well the world did.

    python examples/goal_view.py --env ContextAsMemory-GoalView-v0 --timesteps 4096
"""

import argparse

from stable_baselines3 import PPO

from camworld.agents import GoalFrameExtractor, GoalPoseOracle, evaluate
from camworld.envs import make_sb3_vec_env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="CamWorld-GoalView-v0")
    p.add_argument("--timesteps", type=int, default=1024)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--episodes", type=int, default=5)
    args = p.parse_args(argv)

    venv = make_sb3_vec_env(args.env, num_envs=args.num_envs, seed=0)
    model = PPO("MultiInputPolicy", venv, n_steps=64, batch_size=128, n_epochs=4, ent_coef=0.01, seed=0,
                policy_kwargs=dict(features_extractor_class=GoalFrameExtractor), verbose=1)
    model.learn(total_timesteps=args.timesteps)
    print("PPO        ", evaluate(model, args.env, episodes=args.episodes))
    print("pose oracle", evaluate(GoalPoseOracle, args.env, episodes=args.episodes))  # steers to the true goal pose


if __name__ == "__main__":
    main()
