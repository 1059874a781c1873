"""Stable-Baselines3 ``VecEnv`` over the agents of one shared world: parameter sharing, one model copy.

SuperSuit's ``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1`` cloudpickle the env (one world
model per copy). ``MultiAgentVecEnv`` instead makes each agent of ONE ``MultiAgentCamWorld`` an SB3
env: one ``step`` moves every camera in one batched forward pass, and one policy learns from all
agents' experience (every agent needs the same observation and action spaces: one task for all).

Episodes. The world's episode ends when every agent is done; then all slots report ``done`` and the
world is reset (``terminal_observation`` and ``TimeLimit.truncated`` in their infos, as SB3 expects).
An agent that terminates earlier (arrival in "return"/"goal-view") reports ``done`` at once with its
terminal observation, then *idles* until the others finish: its camera stays still (not generated),
its observation is its last frame, its reward 0 and its info has ``idle=True``. ("coverage" and
"explore" never terminate early: all agents are truncated together.)

    from stable_baselines3 import PPO
    from camworld.envs.multi_agent import make_sb3_multi_agent_vec_env
    venv = make_sb3_multi_agent_vec_env(n_agents=4, task="coverage", backend="model", seed=0)
    PPO("CnnPolicy", venv).learn(10_000)

Letters: N agents.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv


class MultiAgentVecEnv(VecEnv):
    """SB3 view of a ``MultiAgentCamWorld``: env i = agent ``possible_agents[i]``."""

    def __init__(self, env):
        agents = list(env.possible_agents)
        obs_space, act_space = env.observation_space(agents[0]), env.action_space(agents[0])
        for a in agents[1:]:
            if env.observation_space(a) != obs_space or env.action_space(a) != act_space:
                raise ValueError(f"SB3 trains one policy for all agents, so they need equal spaces; {a} has "
                                 f"{env.observation_space(a)} / {env.action_space(a)}, {agents[0]} has {obs_space} / "
                                 f"{act_space}: give every agent the same task and action_type")
        self.env, self.agents = env, agents
        super().__init__(len(agents), obs_space, act_space)
        self._actions = None
        self._obs = None                  # the last observation of every agent (idle agents keep theirs)
        self._idle = np.zeros(self.num_envs, bool)

    def reset(self):
        seed = next((int(s) for s in self._seeds if s is not None), None)
        options = self._options[0] or None
        obs, infos = self.env.reset(seed=seed, options=options)
        self._obs = [obs[a] for a in self.agents]
        self._idle[:] = False
        self.reset_infos = [infos[a] for a in self.agents]
        self._reset_seeds()
        self._reset_options()
        return self._stack(self._obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        N = self.num_envs
        live = set(self.env.agents)
        acts = {a: self._actions[i] for i, a in enumerate(self.agents) if a in live}
        obs, rew, terms, truncs, infos = self.env.step(acts)
        rewards = np.zeros(N, np.float32)
        dones = np.zeros(N, bool)
        out = [{} for _ in range(N)]
        for i, a in enumerate(self.agents):
            if a in obs:
                self._obs[i], rewards[i] = obs[a], rew[a]
                out[i] = dict(infos[a])
                dones[i] = terms[a] or truncs[a]
                out[i]["TimeLimit.truncated"] = bool(truncs[a] and not terms[a])
            else:
                out[i] = {"idle": True, "TimeLimit.truncated": False}
        world_over = not self.env.agents
        for i in range(N):
            if dones[i] or (world_over and self._idle[i]):
                out[i]["terminal_observation"] = self._obs[i]
                dones[i] = True
        self._idle |= dones
        if world_over:
            new = self.reset()
            return new, rewards, dones, out
        return self._stack(self._obs), rewards, dones, out

    def _stack(self, obs: list):
        if isinstance(obs[0], dict):
            return {k: np.stack([o[k] for o in obs]) for k in obs[0]}
        return np.stack(obs)

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name, indices=None):
        """Attributes of the multi-agent env (one env for all slots; ``set_attr`` sets them there too)."""
        return [getattr(self.env, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        """Call a method of agent i's own task env (``env.envs[i]``: its camera, pose, task state)."""
        return [getattr(self.env.envs[i], method_name)(*method_args, **method_kwargs)
                for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._get_indices(indices)]

    def get_images(self):
        if self.env.render_mode != "rgb_array":
            return [None] * self.num_envs
        return [e.frame.copy() for e in self.env.envs]


def make_sb3_multi_agent_vec_env(seed: int | None = None, monitor: bool = True, **kwargs):
    """``MultiAgentVecEnv(MultiAgentCamWorld(**kwargs))``, seeded, ``VecMonitor``-ed."""
    from camworld.envs.multi_agent import MultiAgentCamWorld

    venv = MultiAgentVecEnv(MultiAgentCamWorld(**kwargs))
    if seed is not None:
        venv.seed(seed)
    if monitor:
        from stable_baselines3.common.vec_env import VecMonitor

        venv = VecMonitor(venv)
    return venv
