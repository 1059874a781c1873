"""DAgger on world-model latents (or on goal-view pixels through a correlation head): an agent that learns a
reach-pose task (goal-view, return) by imitating the goal-pose oracle inside a world, then acts without it.

Each round rolls the envs out with a mixture of the oracle and the current policy (the oracle's share
halves every round, from 1: Ross et al.'s DAgger with beta_i = 0.5**i), labels every visited state with the
oracle's action (computed from the env's poses, which the learned world knows as well as the twin), adds them
to one growing dataset, and refits the policy on all of it (cross-entropy). The policy sees only latents
(``camworld.agents.latents.WorldLatents``: the frame and the goal frame as the world model encodes them), or with
``latents=None`` the goal-view frames themselves through ``GoalCorrelationExtractor``, so whatever it learns to
read in them is what the world it was trained in showed. The oracle's labels tell it
where the goal is (turn, walk, stop); whether the frames let it copy them is the question.

    agent, data = DaggerAgent.train("CamWorld-GoalView-v0", WorldLatents(), rounds=8, round_steps=32, num_envs=16)
    evaluate(agent, "CamWorld-GoalView-v0", obs_transform=agent.latents)
    agent, data = DaggerAgent.train("CamWorld-GoalView-v0", None, env_kwargs=dict(excursion="glance"))   # pixels

Discrete actions only. Letters: N envs, B batch, C/h/w latent channels and size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from camworld.agents.features import GoalCorrelationExtractor, LatentGoalHead
from camworld.agents.scripted import env_action, steer


class LatentPolicy(nn.Module):
    """Observations -> logits over the discrete actions: a feature head and one linear layer. ``features``:
    "world-latent" (latent observations, ``LatentGoalHead``) or "correlation" (goal-view frames as uint8
    pixels, ``GoalCorrelationExtractor``; scaled to [0, 1] here). ``blur``: the correlation head's input low-pass
    (pixels; pixels only)."""

    FEATURES = ("world-latent", "correlation")

    def __init__(self, space, n_actions: int, features_dim: int = 256, features: str = "world-latent",
                 blur: float = 0.0):
        super().__init__()
        if features not in self.FEATURES:
            raise ValueError(f"DAgger features must be one of {self.FEATURES}, got {features!r}")
        if features == "world-latent":
            if blur:
                raise ValueError(f"blur low-passes pixels: it needs features='correlation', got {features!r}")
            self.features = LatentGoalHead(space, features_dim=features_dim)
        else:
            self.features = GoalCorrelationExtractor(space, features_dim=features_dim, blur=blur)
        self.logits = nn.Linear(features_dim, n_actions)

    def forward(self, obs: dict) -> torch.Tensor:
        obs = {k: (v.float() / 255.0 if v.dtype == torch.uint8 else v) for k, v in obs.items()}
        return self.logits(self.features(obs))


def _batched(obs: dict, keys) -> dict:
    """One env's or N envs' observation -> tensors with a batch axis (latents as float32, frames stay uint8)."""
    out = {}
    for k in keys:
        a = np.asarray(obs[k])
        v = torch.as_tensor(a if a.dtype == np.uint8 else a.astype(np.float32))
        out[k] = v[None] if v.dim() == 3 else v
    return out


class DaggerAgent:
    """A trained ``LatentPolicy`` with SB3's ``predict`` interface (for ``camworld.agents.evaluate``), saved as
    safetensors + JSON. ``latents``: the ``WorldLatents`` its observations come from (None: the env's frames)."""

    def __init__(self, policy: LatentPolicy, latents, meta: dict):
        self.policy, self.latents, self.meta = policy.eval(), latents, meta
        self.keys = tuple(policy.features.keys or ())

    @torch.no_grad()
    def predict(self, obs, deterministic: bool = True, generator: torch.Generator | None = None):
        logits = self.policy(_batched(obs, self.keys))
        if deterministic:
            a = logits.argmax(-1)
        else:
            a = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        a = a.numpy()
        single = np.asarray(obs[self.keys[0]]).ndim == 3
        return (int(a[0]) if single else a), None

    def save(self, path) -> Path:
        """Weights to ``path`` with suffix .safetensors, the record beside it (.json); both written atomically."""
        from safetensors.torch import save_file

        from camworld.files import atomic_write, write_text

        path = Path(path)
        weights = {k: v.contiguous() for k, v in self.policy.state_dict().items()}
        atomic_write(path.with_suffix(".safetensors"), lambda tmp: save_file(weights, str(tmp)))
        write_text(path.with_suffix(".json"), json.dumps(self.meta, indent=2))
        return path.with_suffix(".safetensors")

    @classmethod
    def load(cls, path, latents) -> "DaggerAgent":
        from gymnasium import spaces
        from safetensors.torch import load_file

        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        features = meta.get("features", "world-latent")
        if features == "world-latent":
            box = spaces.Box(-np.inf, np.inf, tuple(latents.shape), np.float32)
        else:
            box = spaces.Box(0, 255, tuple(meta["obs_shape"]), np.uint8)
        space = spaces.Dict({k: box for k in meta["keys"]})
        policy = LatentPolicy(space, meta["n_actions"], meta["features_dim"], features, meta.get("blur", 0.0))
        policy.load_state_dict(load_file(str(path.with_suffix(".safetensors"))))
        return cls(policy, latents, meta)

    # -- training --------------------------------------------------------------------------------------

    @classmethod
    def train(cls, env_id: str, latents, rounds: int = 8, round_steps: int = 32, num_envs: int = 16, seed: int = 0,
              epochs: int = 4, batch_size: int = 256, lr: float = 1e-3, features_dim: int = 256,
              env_kwargs: dict | None = None, agent: "DaggerAgent | None" = None, data: dict | None = None,
              start_round: int = 0, callback=None, blur: float = 0.0):
        """DAgger rounds ``start_round .. start_round + rounds - 1``, each ``round_steps`` steps of ``num_envs``
        envs of ``env_id`` (one batched world; episodes start afresh at each call). ``latents`` None: the policy
        sees the frames themselves (goal-view only, ``features="correlation"``). ``agent``/``data``: continue
        a run (``data`` = {"obs": {key: array}, "act": array}, the aggregated dataset). ``callback(n)`` after each
        batched step of n env steps. ``blur``: the correlation head's input low-pass in pixels (a new agent's;
        a continued one keeps its own). Returns (agent, data)."""
        from camworld.agents.latents import LatentVecEnv
        from camworld.envs import make_sb3_vec_env

        if rounds < 1 or round_steps < 1 or num_envs < 1:
            raise ValueError(f"rounds, round_steps and num_envs must be >= 1, got {rounds}, {round_steps}, {num_envs}")
        bounds, tol, ytol, kind, names = _task_settings(env_id, env_kwargs)
        if kind != "discrete":
            raise ValueError(f"DAgger here needs discrete actions, got action_type={kind!r}")
        venv = make_sb3_vec_env(env_id, num_envs=num_envs, seed=seed + 7919 * start_round, **(env_kwargs or {}))
        if latents is not None:
            venv = LatentVecEnv(venv, latents)
        features = "world-latent" if latents is not None else "correlation"
        if latents is None and not hasattr(venv.observation_space, "spaces"):
            venv.close()
            raise ValueError("DAgger on pixels (latents=None) compares the frame with a goal frame: it needs a "
                             f"goal-view env, got {env_id} with observations {venv.observation_space}")
        try:
            n_actions = int(venv.action_space.n)
            keys = tuple(venv.observation_space.spaces)
            shape = tuple(venv.observation_space.spaces[keys[0]].shape)
            dtype = np.float32 if latents is not None else np.uint8
            if agent is None:
                torch.manual_seed(seed)
                policy = LatentPolicy(venv.observation_space, n_actions, features_dim, features, blur)
                agent = cls(policy, latents, {"env_id": env_id, "keys": list(keys), "n_actions": n_actions,
                                              "features_dim": features_dim, "features": features,
                                              "blur": float(blur),
                                              "obs_shape": list(shape), "seed": seed, "steps": 0, "rounds": 0})
            opt = torch.optim.Adam(agent.policy.parameters(), lr=lr)
            rng = np.random.default_rng([seed, start_round])
            gen = torch.Generator().manual_seed(seed * 1000 + start_round)
            data = data or {"obs": {k: np.zeros((0, *shape), dtype) for k in keys},
                            "act": np.zeros(0, np.int64)}
            obs = venv.reset()
            infos = list(venv.reset_infos)
            for r in range(start_round, start_round + rounds):
                beta = 0.5 ** r                           # the oracle's share of the actions taken
                got_o, got_a = {k: [] for k in keys}, []
                for _ in range(round_steps):
                    labels = np.array([_label(i, bounds, tol, ytol, names) for i in infos], np.int64)
                    # the policy samples even where the oracle acts (round 0: everywhere), so its generator's
                    # stream, and with it a run, depends only on (seed, round)
                    mine, _ = agent.predict(obs, deterministic=False, generator=gen)
                    act = np.where(rng.random(num_envs) < beta, labels, mine)
                    for k in keys:
                        got_o[k].append(obs[k])
                    got_a.append(labels)
                    obs, _, dones, step_infos = venv.step(act)
                    infos = [(venv.reset_infos[j] if d else step_infos[j]) for j, d in enumerate(dones)]
                    if callback is not None:
                        callback(num_envs)
                for k in keys:
                    data["obs"][k] = np.concatenate([data["obs"][k], np.concatenate(got_o[k])])
                data["act"] = np.concatenate([data["act"], np.concatenate(got_a)])
                _fit(agent.policy, opt, data, keys, epochs, batch_size, rng)
                agent.meta["steps"] += round_steps * num_envs
                agent.meta["rounds"] = r + 1
        finally:
            venv.close()
        return agent, data


def _task_settings(env_id: str, env_kwargs: dict | None):
    """(bounds, arrival distance, arrival yaw, action type, discrete action names) of the task, read from one env
    of it."""
    import gymnasium as gym

    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        u = env.unwrapped
        return u.bounds, u.arrival_distance, u.arrival_yaw_deg, u.action_type, u.discrete_actions
    finally:
        env.close()


def _label(info: dict, bounds, tol: float, ytol: float, names=None) -> int:
    """The goal-pose oracle's discrete action at this state (stop = noop when within the tolerances), as the
    env numbers its actions (``names``: its ``discrete_actions``)."""
    return int(env_action(steer(np.asarray(info["pose"], np.float64), np.asarray(info["goal_pose"], np.float64),
                                "discrete", bounds, align_yaw=True, tolerance=tol, yaw_tolerance_deg=ytol), names))


def _fit(policy, opt, data, keys, epochs: int, batch_size: int, rng):
    policy.train()
    n = len(data["act"])
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            logits = policy({k: torch.as_tensor(data["obs"][k][idx]) for k in keys})
            loss = F.cross_entropy(logits, torch.as_tensor(data["act"][idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    policy.eval()
