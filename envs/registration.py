"""Gymnasium registration from one small table (``import camworld`` calls ``register_envs``).

    gym.make("ContextAsMemory-v0")               # the learned world, shipped checkpoint
    gym.make("CamWorld-Explore-v0")               # a task in the sim twin
    gym.make("CamWorld-v0", task="return")        # the same task by keyword
    gym.make_vec("ContextAsMemory-v0", num_envs=16)   # one batched world for 16 envs
"""

from __future__ import annotations

# Entry points are strings and this module imports no env module: registering loads only gymnasium.
ENTRY_POINT = "camworld.envs.registration:make_env"
VECTOR_ENTRY_POINT = "camworld.envs.vector:make_vector_env"

# id, backend, task, max_episode_steps
ENV_TABLE = (
    ("ContextAsMemory-v0", "model", None, 200),
    ("CamWorld-v0", "sim", None, 200),
    ("ContextAsMemory-Explore-v0", "model", "explore", 200),
    ("CamWorld-Explore-v0", "sim", "explore", 200),
    ("ContextAsMemory-Return-v0", "model", "return", 100),
    ("CamWorld-Return-v0", "sim", "return", 100),
    ("ContextAsMemory-GoalView-v0", "model", "goal-view", 100),
    ("CamWorld-GoalView-v0", "sim", "goal-view", 100),
)
ENV_IDS = tuple(row[0] for row in ENV_TABLE)


def task_class(task):
    from camworld.envs.tasks import TASKS

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {[t for t in TASKS if t]} (or None for no task)")
    return TASKS[task]


def make_env(task=None, **kwargs):
    """Entry point of every id: the task's env class with the remaining keyword arguments."""
    return task_class(task)(**kwargs)


def register_envs() -> None:
    """Register every id of ``ENV_TABLE`` (idempotent)."""
    import gymnasium as gym

    for env_id, backend, task, max_steps in ENV_TABLE:
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
                     max_episode_steps=max_steps, kwargs={"backend": backend, "task": task})
