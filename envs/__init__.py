"""Gymnasium environments over Context-as-Memory worlds (installed as ``camworld.envs``).

    import gymnasium as gym, camworld
    env = gym.make("ContextAsMemory-v0")                  # the learned world
    env = gym.make("CamWorld-Explore-v0")                 # a task in the ground-truth sim twin
    venv = gym.make_vec("ContextAsMemory-v0", num_envs=16)  # 16 worlds, one batched forward pass

Ids: ``ENV_IDS`` (table in ``registration.py``). SB3: ``make_sb3_vec_env`` (imports SB3 lazily).
"""

from camworld.envs.actions import ACTION_TYPES, DISCRETE_ACTIONS, ActionBounds
from camworld.envs.backends import BACKENDS, ModelBackend, SimBackend, make_backend
from camworld.envs.registration import ENV_IDS, ENV_TABLE, make_env, register_envs
from camworld.envs.tasks import TASKS, CoverageGrid, ExploreEnv, GoalViewEnv, ReturnEnv
from camworld.envs.vector import CamWorldVectorEnv, make_vector_env
from camworld.envs.world_env import RESET_OPTIONS, CamWorldEnv

__all__ = ["CamWorldEnv", "ExploreEnv", "ReturnEnv", "GoalViewEnv", "TASKS", "CoverageGrid",
           "CamWorldVectorEnv", "make_vector_env", "SB3VecEnv", "make_sb3_vec_env",
           "ENV_IDS", "ENV_TABLE", "make_env", "register_envs", "RESET_OPTIONS",
           "ACTION_TYPES", "DISCRETE_ACTIONS", "ActionBounds", "BACKENDS", "SimBackend", "ModelBackend", "make_backend",
           "MultiAgentCamWorld", "parallel_env", "make_sb3_multi_agent_vec_env", "bench_shared_memory"]


def __getattr__(name):  # stable-baselines3 (and torch) are imported only when the adapter is used
    if name in ("SB3VecEnv", "make_sb3_vec_env"):
        from camworld.envs import sb3

        return getattr(sb3, name)
    if name in ("MultiAgentCamWorld", "parallel_env", "make_sb3_multi_agent_vec_env", "bench_shared_memory"):
        from camworld.envs import multi_agent  # pettingzoo stays an edge dependency

        return getattr(multi_agent, name)
    raise AttributeError(f"module 'camworld.envs' has no attribute {name!r}")
