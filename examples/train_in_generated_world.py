"""Train PPO inside the generated world, then score it in the real one (the sim twin) against random.

The agent never sees the sim while it learns: every frame it trains on is made up by the learned world
(``ContextAsMemory-GoalView-v0``). Its score comes from ``CamWorld-GoalView-v0``, the ground truth.

    python examples/train_in_generated_world.py                     # the README's budget
    python examples/train_in_generated_world.py --timesteps 256 --episodes 2 --num-envs 2   # a smoke run

For the full comparison (learned world with and without memory, twin, seeds, intervals, curves),
run ``camworld eval agents``.
"""

import argparse

from stable_baselines3 import PPO

from camworld.agents import GoalPoseOracle, evaluate, policy_for
from camworld.agents.benchmark import constant_policy, random_policy
from camworld.agents.training import PPO_DEFAULTS
from camworld.envs import make_sb3_vec_env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=4096, help="env steps of training in the generated world")
    p.add_argument("--num-envs", type=int, default=16, help="worlds stepped in one batched pass")
    p.add_argument("--episodes", type=int, default=16, help="held-out twin episodes to score")
    p.add_argument("--max-episode-steps", type=int, default=None, help="episode cap (default: the registered 100)")
    p.add_argument("--save", default="ppo_goal_view_generated.zip")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cap = {"max_episode_steps": args.max_episode_steps} if args.max_episode_steps else {}

    # 1. learn inside the generated world
    venv = make_sb3_vec_env("ContextAsMemory-GoalView-v0", num_envs=args.num_envs, seed=args.seed, **cap)
    policy, policy_kwargs = policy_for(venv.observation_space)
    n_steps = min(64, max(8, args.timesteps // args.num_envs))
    kw = dict(PPO_DEFAULTS, n_steps=n_steps, batch_size=min(PPO_DEFAULTS["batch_size"], n_steps * args.num_envs))
    model = PPO(policy, venv, policy_kwargs=policy_kwargs, seed=args.seed, device="cpu", verbose=1, **kw)
    model.learn(total_timesteps=args.timesteps, progress_bar=False)
    model.save(args.save)
    venv.close()

    # 2. score it in the real world (the twin), on held-out scenes, against random and the pose oracle
    twin = "CamWorld-GoalView-v0"
    # "always turn left" is there because goal-view's default tours can be solved blind by turning: an agent that
    # scores like it has learned to turn, not to look (docs/benchmarks/agents.md)
    for name, agent in (("PPO (trained in the generated world)", model), ("random", random_policy(args.seed)),
                        ("always turn left", constant_policy(3)), ("pose oracle", GoalPoseOracle)):
        r = evaluate(agent, twin, episodes=args.episodes, seed=100_000, env_kwargs=cap)
        print(f"{name:38s} twin return {r['mean_return']:7.2f}   success {r['success_rate']:.0%}")
    print(f"saved the agent to {args.save}")


if __name__ == "__main__":
    main()
