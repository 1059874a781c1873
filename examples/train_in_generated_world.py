"""Train an agent inside the generated world, then score it in the real one (the sim twin) against random.

The agent never sees the sim while it learns: every frame it trains on is made up by the learned world
(``ContextAsMemory-GoalView-v0``). Its score comes from ``CamWorld-GoalView-v0``, the ground truth.

Two learners:

- ``--algo dagger`` (the default): imitation of the goal-pose oracle (``camworld.agents.imitation``) on the
  generated pixels, through ``GoalCorrelationExtractor``. The oracle's labels come from the camera poses, which
  the learned world knows as well as the twin does; what the policy sees are the generated frames. The task is
  goal-view with glance-away tours and ``stop_to_arrive``: the goal is a side view 20-40 degrees to the left or
  right, shown before the tour looked the other way, and the episode succeeds only if the agent turns to it and
  stops there. So it has to recognise the goal view, no constant action succeeds, and only a world that shows
  the goal's place again as it showed it before can teach that: ``--retrieval recent`` trains the same agent in
  a world without long-term memory (at 4,096 steps: 0.36 +- 0.06 with memory, 0.00 without, over 5 seeds;
  docs/benchmarks/agents.md).
- ``--algo ppo``: SB3 PPO from pixels on the reward alone, on goal-view's glance tours (the goal a side view
  20-40 degrees to the left or right, partly in sight; 8 steps): which way to turn is what the frames tell, and
  a constant turn reaches only the goals on its side. The frames go through ``GoalCorrelationExtractor`` (a
  Siamese CNN correlated at every horizontal shift), with more entropy and epochs than SB3's defaults. At 16,384
  steps it scored 0.62 and 0.65 in the twin (seeds 0, 1), on goals to both sides (docs/benchmarks/agents.md).

    python examples/train_in_generated_world.py                     # the README's budget (DAgger)
    python examples/train_in_generated_world.py --retrieval recent  # the same in a world without memory
    python examples/train_in_generated_world.py --algo ppo --timesteps 16384   # PPO, glance tours
    python examples/train_in_generated_world.py --timesteps 64 --episodes 2 --num-envs 2   # a smoke run

For the full comparison (learned world with and without memory, twin, seeds, intervals, curves),
run ``camworld eval agents``.
"""

import argparse

from camworld.agents import GoalPoseOracle, evaluate
from camworld.agents.benchmark import constant_policy, random_policy

TWIN = "CamWorld-GoalView-v0"
LEARNED = "ContextAsMemory-GoalView-v0"


def train_dagger(args, task, cap, world):
    from camworld.agents.imitation import DaggerAgent

    round_steps = max(1, min(32, args.timesteps // args.num_envs))
    rounds = max(1, args.timesteps // (round_steps * args.num_envs))
    # latents=None: the policy sees the generated pixels, through the correlation head
    agent, _ = DaggerAgent.train(LEARNED, None, rounds=rounds, round_steps=round_steps, num_envs=args.num_envs,
                                 seed=args.seed, env_kwargs={**task, **cap, **world}, blur=args.blur)
    path = agent.save(args.save)
    return agent, None, path


def train_ppo(args, task, cap, world):
    from stable_baselines3 import PPO

    from camworld.agents import policy_for
    from camworld.agents.training import PPO_DEFAULTS
    from camworld.envs import make_sb3_vec_env

    venv = make_sb3_vec_env(LEARNED, num_envs=args.num_envs, seed=args.seed, **task, **cap, **world)
    policy, policy_kwargs = policy_for(venv.observation_space, features="correlation", blur=args.blur)
    n_steps = min(32, max(8, args.timesteps // args.num_envs))
    # more entropy and epochs than the defaults: with them the policy settles on one turn in its first rollouts
    kw = dict(PPO_DEFAULTS, n_steps=n_steps, batch_size=min(PPO_DEFAULTS["batch_size"], n_steps * args.num_envs),
              ent_coef=0.05, n_epochs=10)
    model = PPO(policy, venv, policy_kwargs=policy_kwargs, seed=args.seed, device="cpu", verbose=1, **kw)
    model.learn(total_timesteps=args.timesteps, progress_bar=False)
    model.save(args.save)
    venv.close()
    return model, None, args.save


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", default="dagger", choices=["dagger", "ppo"],
                   help="dagger: imitate the goal-pose oracle on the generated pixels (glance-away tours: turn "
                        "to the goal seen before and stop there); ppo: SB3 PPO from pixels on the reward (glance "
                        "tours: turn towards the goal's side)")
    p.add_argument("--retrieval", default=None, choices=["recent"],
                   help="train in a world without long-term memory (its context: the last k frames) instead of "
                        "the default retrieval")
    p.add_argument("--blur", type=float, default=0.0, metavar="SIGMA",
                   help="the agent's frames pass a fixed Gaussian low-pass of this standard deviation (pixels) in "
                        "its policy, in the generated world and in the twin alike (default 0: none)")
    p.add_argument("--timesteps", type=int, default=4096, help="env steps of training in the generated world")
    p.add_argument("--num-envs", type=int, default=16, help="worlds stepped in one batched pass")
    p.add_argument("--episodes", type=int, default=48, help="held-out twin episodes to score")
    p.add_argument("--max-episode-steps", type=int, default=None,
                   help="episode cap (default: 8)")
    p.add_argument("--save", default=None, help="where the agent goes (default: goal_view_<algo>_generated[.zip])")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.timesteps < args.num_envs:
        p.error(f"--timesteps ({args.timesteps}) must be at least --num-envs ({args.num_envs})")
    args.save = args.save or (f"goal_view_{args.algo}_generated" + (".zip" if args.algo == "ppo" else ""))
    cap = {"max_episode_steps": args.max_episode_steps or 8}
    # dagger: success only by stopping at the goal seen before the tour looked away (no blind policy succeeds,
    # and it needs the world's memory); ppo: glance tours (a blind policy succeeds on one side only)
    task = ({"excursion": "glance-away", "stop_to_arrive": True} if args.algo == "dagger"
            else {"excursion": "glance"})
    world = {"retrieval": args.retrieval} if args.retrieval else {}

    # 1. learn inside the generated world
    agent, latents, path = (train_dagger if args.algo == "dagger" else train_ppo)(args, task, cap, world)

    # 2. score it in the real world (the twin), on held-out scenes, against random, the constant turns and the
    # oracle (a policy blind to the frames can still turn: one that scores like a constant turn, or succeeds on one
    # side of the goals only, has learned to turn, not to look; docs/benchmarks/agents.md)
    kw = {**task, **cap}
    trained = f"{args.algo} (trained in the generated world{', recent' if args.retrieval else ''})"
    for name, policy, transform in ((trained, agent, latents),
                                    ("random", random_policy(args.seed), None),
                                    ("always turn left", constant_policy(3), None),
                                    ("always turn right", constant_policy(4), None),
                                    ("pose oracle", GoalPoseOracle, None)):
        r = evaluate(policy, TWIN, episodes=args.episodes, seed=100_000, env_kwargs=kw, obs_transform=transform)
        sides = "   goals left / right " + " / ".join("-" if r[k] != r[k] else f"{r[k]:.0%}"   # NaN: none there
                                                  for k in ("success_goal_left", "success_goal_right"))
        print(f"{name:40s} twin return {r['mean_return']:7.2f}   success {r['success_rate']:.0%}{sides}")
    print(f"saved the agent to {path}")


if __name__ == "__main__":
    main()
