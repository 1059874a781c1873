"""Stable-Baselines3 ``VecEnv`` adapter over the batched vector env: SB3 trains with one model copy.

SB3 does not accept ``gymnasium.vector.VectorEnv`` and its ``DummyVecEnv``/``SubprocVecEnv`` would
build one world (one model copy) per env. ``SB3VecEnv`` wraps ``CamWorldVectorEnv`` instead: one
batched step for all N envs, SB3's auto-reset semantics (``terminal_observation`` and
``TimeLimit.truncated`` in the infos of the envs that finished, ``reset_infos`` for the new episodes).

    from camworld.envs import make_sb3_vec_env
    venv = make_sb3_vec_env("CamWorld-Explore-v0", num_envs=8, seed=0)
    PPO("CnnPolicy", venv).learn(10_000)
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv


class SB3VecEnv(VecEnv):
    """SB3 view of a ``CamWorldVectorEnv`` (SAME_STEP autoreset)."""

    def __init__(self, venv):
        from gymnasium.vector import AutoresetMode

        if venv.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("SB3VecEnv needs a vector env with AutoresetMode.SAME_STEP "
                             f"(got {venv.metadata.get('autoreset_mode')}); build it with gym.make_vec(camworld id, ...)")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions = None

    def reset(self):
        """Reset every env (seeds from ``seed()``; the options of ``set_options`` for env 0 apply to all)."""
        seeds = list(self._seeds)
        seed = None if all(s is None for s in seeds) else [None if s is None else int(s) for s in seeds]
        options = self._options[0] if self._options and self._options[0] else None
        obs, infos = self.venv.reset(seed=seed, options=options)
        self.reset_infos = _split_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, rewards, terms, truncs, infos = self.venv.step(self._actions)
        dones = terms | truncs
        step_infos = _split_infos(infos, self.num_envs)
        out = []
        finals = _split_infos(infos.get("final_info", {}), self.num_envs) if "final_info" in infos else None
        for i in range(self.num_envs):
            if dones[i]:
                info = finals[i]
                info["terminal_observation"] = infos["final_obs"][i]
                info["TimeLimit.truncated"] = bool(truncs[i] and not terms[i])
                self.reset_infos[i] = step_infos[i]          # the new episode's reset info
            else:
                info = step_infos[i]
                info["TimeLimit.truncated"] = False
            out.append(info)
        return obs, rewards.astype(np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.venv.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        for i in self._get_indices(indices):
            setattr(self.venv.envs[i], attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [getattr(self.venv.envs[i], method_name)(*method_args, **method_kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._get_indices(indices)]     # sub-envs are bare: the vector env truncates

    def get_images(self):
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        return list(self.venv.render())


def _split_infos(infos: dict, n: int) -> list:
    """Gymnasium's dict of arrays with ``_key`` masks -> a list of n per-env dicts."""
    out = [{} for _ in range(n)]
    for key, val in infos.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = infos.get(f"_{key}", np.ones(n, bool))
        per_env = _split_infos(val, n) if isinstance(val, dict) else val
        for i in range(n):
            if mask[i]:
                out[i][key] = _item(per_env[i])
    return out


def _item(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def make_sb3_vec_env(env_id: str, num_envs: int = 1, seed: int | None = None, monitor: bool = True, **kwargs):
    """An SB3 VecEnv of ``num_envs`` envs of ``env_id`` in one batched world (``VecMonitor``-ed)."""
    import gymnasium as gym

    import camworld  # noqa: F401  (registers the ids)

    venv = SB3VecEnv(gym.make_vec(env_id, num_envs=num_envs, **kwargs))
    if seed is not None:
        venv.seed(seed)
    if monitor:
        venv = _monitor(venv)
    return venv


class ResetInfosFromWrapped:
    """Mixin for SB3 ``VecEnvWrapper`` subclasses: ``reset_infos`` reads through to the wrapped env's list
    (SB3's wrappers keep an empty list of their own, so a policy that needs the reset info, e.g. a goal pose,
    would get ``{}``). Put it before the SB3 class in the bases."""

    @property
    def reset_infos(self):
        return self.venv.reset_infos

    @reset_infos.setter
    def reset_infos(self, value):    # VecEnv.__init__ assigns one; the wrapped env's list is the one that counts
        pass


def _monitor(venv):
    """SB3's ``VecMonitor``, with ``reset_infos`` read through to the adapter's (``ResetInfosFromWrapped``)."""
    from stable_baselines3.common.vec_env import VecMonitor

    class _Monitor(ResetInfosFromWrapped, VecMonitor):
        pass

    return _Monitor(venv)
