"""Gymnasium environments over Context-as-Memory worlds (installed as ``camworld.envs``).

    import gymnasium as gym, camworld
    env = gym.make("ContextAsMemory-v0")                  # the learned world
    env = gym.make("CamWorld-Explore-v0")                 # a task in the ground-truth sim twin
    venv = gym.make_vec("ContextAsMemory-v0", num_envs=16)  # 16 worlds, one batched forward pass

Ids: ``ENV_IDS`` (table in ``registration.py``). SB3: ``make_sb3_vec_env``. Every name below is
imported on first use, so registering the ids (``import camworld``) loads no env module, and SB3,
PettingZoo and torch stay edge dependencies.
"""

import importlib

# name -> the submodule that defines it
_WHERE = {
    "ACTION_TYPES": "actions", "DISCRETE_ACTIONS": "actions", "ActionBounds": "actions",
    "BACKENDS": "backends", "ModelBackend": "backends", "SimBackend": "backends", "make_backend": "backends",
    "WorldSpec": "backends", "backend_for": "backends",
    "ENV_IDS": "registration", "ENV_TABLE": "registration", "make_env": "registration",
    "register_envs": "registration",
    "TASKS": "tasks", "CoverageGrid": "tasks", "ExploreEnv": "tasks", "GoalViewEnv": "tasks", "ReturnEnv": "tasks",
    "CamWorldVectorEnv": "vector", "make_vector_env": "vector",
    "RESET_OPTIONS": "world_env", "CamWorldEnv": "world_env",
    "SB3VecEnv": "sb3", "make_sb3_vec_env": "sb3",
    "MultiAgentCamWorld": "multi_agent", "parallel_env": "multi_agent",
    "make_sb3_multi_agent_vec_env": "multi_agent", "bench_shared_memory": "multi_agent",
}

__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'camworld.envs' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
