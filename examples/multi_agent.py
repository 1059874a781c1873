"""Three cameras explore one remembered world together (PettingZoo), then the world is saved.

    python examples/multi_agent.py                                   # the ground-truth sim twin
    python examples/multi_agent.py --backend model --checkpoint runs/dit/model.safetensors --save team.world
    python examples/multi_agent.py --ppo 2000                        # PPO, one policy for all cameras (SB3)

Every step prints the team's reward (floor area newly seen by anyone) and how many of each camera's
context frames were made by ANOTHER camera: the memory they share.
"""

import argparse

import numpy as np

from camworld.envs.multi_agent import make_sb3_multi_agent_vec_env, parallel_env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="sim", choices=["sim", "model"])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--agents", type=int, default=3)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--save", default=None, help="save the explored world to this folder (learned world only)")
    p.add_argument("--ppo", type=int, default=0, help="train PPO for this many agent-steps instead")
    args = p.parse_args(argv)
    kw = dict(n_agents=args.agents, task="coverage", backend=args.backend, max_cycles=args.steps)
    if args.backend == "model":
        kw["checkpoint"] = args.checkpoint

    if args.ppo:
        from stable_baselines3 import PPO

        from camworld.agents import FrameCNN

        venv = make_sb3_multi_agent_vec_env(seed=0, **kw)
        model = PPO("CnnPolicy", venv, n_steps=32, batch_size=32, seed=0, verbose=1,
                    policy_kwargs=dict(features_extractor_class=FrameCNN))
        model.learn(total_timesteps=args.ppo)
        return

    env = parallel_env(**kw)
    obs, infos = env.reset(seed=0)
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rewards, terms, truncs, infos = env.step(actions)
        shared = [int(np.sum((i["retrieved_sources"] >= 0) & (i["retrieved_sources"] != k)))
                  for k, i in enumerate(infos.values())]
        print(f"step {env.cycles:3d}  team reward {next(iter(rewards.values())):5.2f} m^2  "
              f"context frames from other cameras {shared}")
    print(f"the team saw {infos['camera_0']['team_seen_area_m2']:.1f} m^2; the shared memory holds "
          f"{len(env.memory)} frames from cameras {sorted(set(env.memory.sources.tolist()))}")
    if args.save and args.backend == "model":
        from camworld.world_io import save_world

        save_world(env.backend.world, args.save, extra={"scene_seed": env.envs[0].scene_seed})
        print(f"saved to {args.save}: camworld.world_io.load_world({args.save!r}, model) explores it again")
    env.close()


if __name__ == "__main__":
    main()
