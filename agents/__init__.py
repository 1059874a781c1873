"""Agents for camworld envs (installed as ``camworld.agents``).

Scripted policies (numpy only): ``RandomWalkPolicy``, ``WaypointFollower``, ``ReturnToStartPolicy``,
and ``steer`` (one action toward a pose). SB3 pieces (import torch and stable-baselines3 when used):
``FrameCNN``, ``GoalFrameExtractor``, ``GoalCorrelationExtractor`` and ``LatentGoalHead`` (feature extractors), ``WorldLatents`` and
``LatentVecEnv`` (frames as the world model's latents), ``DaggerAgent`` (imitation of the goal-pose
oracle), ``train``, ``evaluate``, ``policy_for``.
``camworld.agents.benchmark`` is ``camworld eval agents`` (train in the generated world, score in the twin);
its ``GoalPoseOracle`` and ``RandomPolicy`` are exported here too.
"""

from camworld.agents.scripted import RandomWalkPolicy, ReturnToStartPolicy, WaypointFollower, steer

__all__ = ["RandomWalkPolicy", "WaypointFollower", "ReturnToStartPolicy", "steer",
           "FrameCNN", "GoalFrameExtractor", "GoalCorrelationExtractor", "LatentGoalHead", "WorldLatents", "LatentVecEnv",
           "train", "evaluate", "policy_for", "GoalPoseOracle", "RandomPolicy", "DaggerAgent"]

_LAZY = {"FrameCNN": "features", "GoalFrameExtractor": "features", "GoalCorrelationExtractor": "features",
         "LatentGoalHead": "features",
         "WorldLatents": "latents", "LatentVecEnv": "latents", "DaggerAgent": "imitation",
         "train": "training", "evaluate": "training", "policy_for": "training",
         "GoalPoseOracle": "benchmark", "RandomPolicy": "benchmark"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"camworld.agents.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'camworld.agents' has no attribute {name!r}")
