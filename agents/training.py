"""Train and evaluate agents in camworld envs: SB3 algorithms on the batched adapter, scripted policies.

    model = train("CamWorld-Explore-v0", total_timesteps=20_000, num_envs=8)
    print(evaluate(model, "CamWorld-Explore-v0", episodes=10))
    print(evaluate(ReturnToStartPolicy, "CamWorld-Return-v0", episodes=10))
"""

from __future__ import annotations

import numpy as np

# PPO defaults for short CPU runs on 64x64 frames (SB3's 2048-step rollouts are too long here)
PPO_DEFAULTS = dict(n_steps=128, batch_size=64, n_epochs=4, learning_rate=2.5e-4, ent_coef=0.01, gamma=0.99)


FEATURES = ("cnn", "world-latent", "correlation")


def policy_for(observation_space, features_dim: int = 256, features: str = "cnn", blur: float = 0.0) -> tuple:
    """-> (SB3 policy name, policy_kwargs) with the right camworld feature extractor.

    ``features``: "cnn" (a CNN on the pixels, trained from scratch: ``FrameCNN`` / ``GoalFrameExtractor``),
    "correlation" (goal-view pixels: a Siamese CNN whose column descriptors are correlated at every horizontal
    shift, ``GoalCorrelationExtractor``; Dict observations only) or "world-latent" (``observation_space`` holds
    world-model latents, ``camworld.agents.latents.WorldLatents``: a small head on them, ``LatentGoalHead``).
    ``blur``: a fixed Gaussian low-pass on the frames before the correlation head (pixels; "correlation" only)."""
    from gymnasium import spaces

    from camworld.agents.features import FrameCNN, GoalCorrelationExtractor, GoalFrameExtractor, LatentGoalHead

    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    if blur and features != "correlation":
        raise ValueError(f"blur is an input low-pass of the correlation head: it needs features='correlation', "
                         f"got {features!r}")
    is_dict = isinstance(observation_space, spaces.Dict)
    if features == "world-latent":
        return ("MultiInputPolicy" if is_dict else "MlpPolicy",
                dict(features_extractor_class=LatentGoalHead, features_extractor_kwargs=dict(features_dim=features_dim)))
    if features == "correlation":
        if not is_dict:
            raise ValueError("features='correlation' compares a frame with a goal: it needs a goal-view Dict "
                             f"observation space, got {observation_space}")
        return "MultiInputPolicy", dict(features_extractor_class=GoalCorrelationExtractor,
                                        features_extractor_kwargs=dict(features_dim=features_dim,
                                                                       **({"blur": float(blur)} if blur else {})))
    name = "MultiInputPolicy" if is_dict else "CnnPolicy"
    cls = GoalFrameExtractor if name == "MultiInputPolicy" else FrameCNN
    return name, dict(features_extractor_class=cls, features_extractor_kwargs=dict(features_dim=features_dim))


def train(env_id: str, total_timesteps: int = 10_000, num_envs: int = 4, algo: str = "PPO", seed: int = 0,
          env_kwargs: dict | None = None, algo_kwargs: dict | None = None, features_dim: int = 256,
          save: str | None = None, verbose: int = 0, features: str = "cnn"):
    """Train an SB3 agent on ``num_envs`` envs stepped in one batched world. Returns the model.

    Args:
        env_id: a camworld id (``camworld.envs.ENV_IDS``).
        algo: an SB3 on-policy or off-policy algorithm name ("PPO", "A2C", "DQN", ...).
        env_kwargs: passed to the env (action_type, frames_per_step, checkpoint, ...).
        algo_kwargs: passed to the algorithm (PPO gets ``PPO_DEFAULTS`` underneath).
        save: a path to save the trained model to (SB3 zip).
        features: "cnn" (pixels) or "world-latent" (the env's frames become the world model's latents,
            ``camworld.agents.latents``; ``env_kwargs["checkpoint"]`` picks the model, else the shipped one;
            evaluate such an agent with ``obs_transform=WorldLatents(...)``).
    """
    import stable_baselines3 as sb3

    from camworld.envs import make_sb3_vec_env

    if not hasattr(sb3, algo):
        raise ValueError(f"unknown SB3 algorithm {algo!r}; try PPO, A2C, DQN, SAC")
    venv = make_sb3_vec_env(env_id, num_envs=num_envs, seed=seed, **(env_kwargs or {}))
    if features == "world-latent":
        from camworld.agents.latents import LatentVecEnv, WorldLatents

        venv = LatentVecEnv(venv, WorldLatents((env_kwargs or {}).get("checkpoint")))
    policy, policy_kwargs = policy_for(venv.observation_space, features_dim, features)
    kwargs = dict(PPO_DEFAULTS) if algo == "PPO" else {}
    kwargs.update(algo_kwargs or {})
    if algo == "PPO":
        kwargs["batch_size"] = min(kwargs["batch_size"], kwargs["n_steps"] * num_envs)
    model = getattr(sb3, algo)(policy, venv, policy_kwargs=policy_kwargs, seed=seed, verbose=verbose, **kwargs)
    model.learn(total_timesteps=total_timesteps)
    if save:
        model.save(save)
    return model


def evaluate(agent, env_id: str, episodes: int = 10, seed: int = 0, deterministic: bool = True,
             env_kwargs: dict | None = None, max_steps: int | None = None, obs_transform=None,
             on_view=None) -> dict:
    """Run whole episodes (one env, seeds ``seed .. seed + episodes - 1``) and summarise them.

    Args:
        agent: an SB3 model (``predict``), a scripted policy class (built per env, e.g.
            ``ReturnToStartPolicy``) or instance (``reset``/``act``), or a callable ``(obs, info) -> action``.
        obs_transform: applied to each observation before an SB3 model sees it (e.g. ``WorldLatents``).
        on_view: called as ``on_view(episode, obs, info)`` with every view, after the reset and after each step
            (``camworld eval goal-cue`` records the goal PSNR of each).
    Returns:
        dict with ``mean_return``, ``std_return``, ``mean_length``, ``success_rate`` (share of episodes
        with ``info["arrived"]``, NaN for tasks without it) and ``final_goal_psnr`` (mean, NaN if absent); for
        goal tasks also ``success_goal_left`` / ``success_goal_right``: the success rate over the episodes whose
        goal yaw lies to the left / right of the start yaw (NaN where none does).
    """
    import gymnasium as gym

    import camworld  # noqa: F401  (registers the ids)

    env = gym.make(env_id, **(env_kwargs or {}))
    if isinstance(agent, type):
        agent = agent(env)
    returns, lengths, arrived, psnrs, sides = [], [], [], [], []
    try:
        for ep in range(episodes):
            obs, info = env.reset(seed=seed + ep)
            if "goal_pose" in info and "pose" in info:   # which way the goal lies from the start: left (> 0) or right
                sides.append(bool(np.sin(info["goal_pose"][2] - info["pose"][2]) > 0))
            if hasattr(agent, "reset"):
                agent.reset(obs, info)
            if on_view is not None:
                on_view(ep, obs, info)
            total, steps, done = 0.0, 0, False
            while not done:
                if hasattr(agent, "predict"):
                    action, _ = agent.predict(obs if obs_transform is None else obs_transform(obs),
                                              deterministic=deterministic)
                elif hasattr(agent, "act"):
                    action = agent.act(obs, info)
                else:
                    action = agent(obs, info)
                obs, reward, terminated, truncated, info = env.step(action)
                if on_view is not None:
                    on_view(ep, obs, info)
                total, steps = total + reward, steps + 1
                done = terminated or truncated or (max_steps is not None and steps >= max_steps)
            returns.append(total)
            lengths.append(steps)
            if "arrived" in info:
                arrived.append(bool(info["arrived"]))
            if "goal_psnr" in info:
                psnrs.append(float(info["goal_psnr"]))
    finally:
        env.close()
    out = {"episodes": episodes, "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
           "mean_length": float(np.mean(lengths)),
           "success_rate": float(np.mean(arrived)) if arrived else float("nan"),
           "final_goal_psnr": float(np.mean(psnrs)) if psnrs else float("nan")}
    if arrived and len(sides) == len(arrived):   # a policy blind to the frames succeeds on one side only
        a, side = np.array(arrived), np.array(sides)
        for name, mask in (("left", side), ("right", ~side)):
            out[f"success_goal_{name}"] = float(a[mask].mean()) if mask.any() else float("nan")
    return out
