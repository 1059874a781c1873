"""A natively batched vector env: N envs, one backend of N worlds, one generator call per step.

``gym.make_vec("ContextAsMemory-v0", num_envs=16)`` builds this (the ids' ``vector_entry_point``):
the N sub-envs keep their own episode logic (actions, walls, rewards, seeds), but their worlds live
in ONE backend, so a step turns all N actions into target poses and generates every world's frames
in one batched forward pass (one model copy, whatever N).

Autoreset is ``AutoresetMode.SAME_STEP``: an env that terminates or truncates is reset inside the
same ``step`` (its scripted excursion, if any, is generated batched with the others that reset);
the returned observation is the new episode's first one, ``info["final_obs"]`` and
``info["final_info"]`` hold the last ones, with masks ``info["_final_obs"]``/``info["_final_info"]``.
Infos are a dict of arrays with ``_key`` masks (Gymnasium's vector convention); per-env values of
differing shapes (e.g. ``frames`` of a reset next to a step) go into object arrays.

Letters: N envs, T frames per step.
"""

from __future__ import annotations

import numpy as np
import gymnasium as gym
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from camworld.envs.backends import BACKENDS, WorldSpec
from camworld.envs.registration import task_class
from camworld.envs.world_env import _frame_size, run_reset_segments



class CamWorldVectorEnv(gym.vector.VectorEnv):
    """N camworld envs sharing one batched backend (see the module docstring).

    Args:
        num_envs: N.
        task: None, "explore", "return" or "goal-view".
        backend: "model" (the learned world) or "sim" (the ground-truth twin).
        max_episode_steps: truncate each episode after this many steps (None: never).
        render_mode: None or "rgb_array" (``render()`` returns a tuple of N frames).
        **kwargs: everything ``CamWorldEnv`` (and the task) accepts: action_type, retrieval,
            context_size, frames_per_step, frame_size, checkpoint, device, ...
    """

    def __init__(self, num_envs: int = 1, task=None, backend: str = "sim", max_episode_steps: int | None = None,
                 render_mode: str | None = None, **kwargs):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"a vector env renders with render_mode='rgb_array' (a tuple of frames) or None, got "
                             f"{render_mode!r}; for a window, use one env: gym.make(id, render_mode='human')")
        if max_episode_steps is not None and (not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be an int >= 1 or None, got {max_episode_steps!r}")
        cls = task_class(task)
        spec = {k: kwargs.pop(k) for k in WorldSpec.FIELDS if k in kwargs}
        spec["frame_size"] = _frame_size(spec.get("frame_size"))
        self.backend = WorldSpec(backend, **spec).build(int(num_envs))
        self.envs = [cls(backend=self.backend, slot=i, render_mode=render_mode, **kwargs) for i in range(num_envs)]
        self.num_envs, self.task, self.max_episode_steps = int(num_envs), task, max_episode_steps
        self.render_mode = render_mode
        first = self.envs[0]
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": first.metadata["render_fps"],
                         "autoreset_mode": AutoresetMode.SAME_STEP}
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._obs = [None] * self.num_envs
        self._closed = False

    # ---------------------------------------------------------------- reset

    def reset(self, *, seed=None, options: dict | None = None):
        N = self.num_envs
        if seed is None:
            seeds = [None] * N
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(N)]
        else:
            seeds = list(seed)
            if len(seeds) != N:
                raise ValueError(f"seed must be None, an int or a list of {N} seeds, got a list of {len(seeds)}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(N, bool)
        else:
            mask = np.asarray(mask)
            if mask.shape != (N,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({N},) with a True, got {mask!r}")
        idx = list(np.flatnonzero(mask))
        infos = self._reset_envs(idx, [seeds[i] for i in idx], options or None)
        return self._batch_obs(), _merge_infos(infos, N)

    def _reset_envs(self, idx, seeds, options) -> list:
        """Reset envs ``idx`` with their scripted excursions generated batched. -> infos (None for others)."""
        segs = {i: self.envs[i].begin_reset(s, options) for i, s in zip(idx, seeds)}
        run_reset_segments(self.backend, dict(enumerate(self.envs)), segs)
        infos = [None] * self.num_envs
        for i in idx:
            self._obs[i], infos[i] = self.envs[i].end_reset()
        return infos

    # ---------------------------------------------------------------- step

    def step(self, actions):
        N = self.num_envs
        if any(o is None for o in self._obs):
            raise RuntimeError("call reset() before step()")
        if isinstance(actions, dict) or len(actions) != N:
            raise ValueError(f"actions must hold one action per env ({N}), got {actions!r}")
        targets = np.stack([env.begin_step(a) for env, a in zip(self.envs, actions)])     # (N, T, 3)
        res = self.backend.step_result(targets)                                             # frames (N, T, H, W, 3)
        rewards = np.zeros(N, np.float64)
        terms, truncs = np.zeros(N, bool), np.zeros(N, bool)
        infos, final_obs, final_infos = [None] * N, [None] * N, [None] * N
        for i, env in enumerate(self.envs):
            obs, rewards[i], terms[i], _, infos[i] = env.end_step(res.frames[i], res.retrieved[i])
            truncs[i] = self.max_episode_steps is not None and env.steps >= self.max_episode_steps
            self._obs[i] = obs
            if terms[i] or truncs[i]:
                final_obs[i], final_infos[i] = obs, infos[i]
        done = list(np.flatnonzero(terms | truncs))
        if done:
            reset_infos = self._reset_envs(done, [None] * len(done), None)
            for i in done:
                infos[i] = reset_infos[i]
        out = _merge_infos(infos, N)
        if done:
            fo = np.full(N, None, dtype=object)
            for i in done:
                fo[i] = final_obs[i]
            out["final_obs"], out["_final_obs"] = fo, terms | truncs
            out["final_info"], out["_final_info"] = _merge_infos(final_infos, N), terms | truncs
        return self._batch_obs(), rewards, terms, truncs, out

    # ---------------------------------------------------------------- the rest of the VectorEnv API

    def _batch_obs(self):
        out = create_empty_array(self.single_observation_space, n=self.num_envs, fn=np.zeros)
        return concatenate(self.single_observation_space, self._obs, out)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return tuple(env.render() for env in self.envs)

    def call(self, name: str, *args, **kwargs) -> tuple:
        out = []
        for env in self.envs:
            fn = getattr(env, name)
            out.append(fn(*args, **kwargs) if callable(fn) else fn)
        return tuple(out)

    def get_attr(self, name: str) -> tuple:
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values):
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"values must be one value or {self.num_envs} values, got {len(values)}")
        for env, v in zip(self.envs, values):
            setattr(env, name, v)

    def close_extras(self, **kwargs):
        if not self._closed:
            for env in self.envs:
                env.close()
            self.backend.close()
            self._closed = True


def make_vector_env(num_envs: int = 1, **kwargs) -> CamWorldVectorEnv:
    """The ids' ``vector_entry_point``."""
    return CamWorldVectorEnv(num_envs=num_envs, **kwargs)


def _merge_infos(infos: list, n: int) -> dict:
    """Per-env info dicts (None = no info) -> Gymnasium's dict of arrays with ``_key`` masks."""
    out: dict = {}
    keys = list(dict.fromkeys(k for info in infos if info for k in info))
    for key in keys:
        have = np.array([info is not None and key in info for info in infos], bool)
        vals = [info[key] if h else None for info, h in zip(infos, have)]
        present = [v for v, h in zip(vals, have) if h]
        if all(isinstance(v, dict) for v in present):
            out[key] = _merge_infos([v if h else None for v, h in zip(vals, have)], n)
        elif all(type(v) in (bool, int, float) for v in present) and len({type(v) for v in present}) == 1:
            arr = np.zeros(n, dtype=type(present[0]))
            arr[have] = present
            out[key] = arr
        elif (all(isinstance(v, np.ndarray) for v in present)
              and len({(v.shape, v.dtype) for v in present}) == 1):
            arr = np.zeros((n,) + present[0].shape, present[0].dtype)
            arr[have] = np.stack(present)
            out[key] = arr
        else:
            arr = np.full(n, None, dtype=object)
            for i in np.flatnonzero(have):
                arr[i] = vals[i]
            out[key] = arr
        out[f"_{key}"] = have
    return out
