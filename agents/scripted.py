"""Scripted policies: random walk, waypoint follower, return-to-start.

A policy is built for one env (it reads the action type and step sizes from ``env.unwrapped``) and
is driven with the env's own outputs:

    policy = ReturnToStartPolicy(env)
    obs, info = env.reset(seed=0)
    policy.reset(obs, info)
    while True:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        ...

They steer with ``info["pose"]`` (the camera pose the env commanded), never with pixels.
"""

from __future__ import annotations

import numpy as np

from camworld.geometry import wrap_angle

ARRIVAL_DISTANCE_M = 0.55    # for envs without arrival tolerances of their own (reach tasks have them)
ARRIVAL_YAW_DEG = 10.0
NOOP, FORWARD, BACKWARD, TURN_LEFT, TURN_RIGHT, STRAFE_LEFT, STRAFE_RIGHT = range(7)


def _settings(env):
    u = env.unwrapped
    return u.action_type, u.bounds, env.action_space


def env_action(action, names):
    """A discrete action as ``DISCRETE_ACTIONS`` numbers it -> its index in an env's own action set ``names``
    (``env.unwrapped.discrete_actions``: all seven, or the subset given as ``discrete_actions=``). Other action
    types pass through. An action that the subset leaves out is an error that names it."""
    if names is None or not isinstance(action, (int, np.integer)):
        return action
    from camworld.motion import DISCRETE_NAMES

    name = DISCRETE_NAMES[int(action)]
    if name not in names:
        raise ValueError(f"this policy needs the action {name!r}, which the env's discrete_actions {list(names)} "
                         "leave out")
    return names.index(name)


def _tolerances(env, tolerance, yaw_tolerance_deg) -> tuple:
    """The env's arrival tolerances (reach tasks) unless given."""
    u = env.unwrapped
    return (float(tolerance if tolerance is not None else getattr(u, "arrival_distance", ARRIVAL_DISTANCE_M)),
            float(yaw_tolerance_deg if yaw_tolerance_deg is not None else getattr(u, "arrival_yaw_deg", ARRIVAL_YAW_DEG)))


def steer(pose, target, action_type: str, bounds, align_yaw: bool = True,
          tolerance: float = ARRIVAL_DISTANCE_M, yaw_tolerance_deg: float = ARRIVAL_YAW_DEG):
    """One action that takes the camera from ``pose`` toward ``target`` (x, y[, yaw]).

    discrete: turn to face the target, then go forward; within ``tolerance`` turn to its yaw.
    continuous: translate toward it in the camera frame and turn toward its yaw, within the bounds.
    pose: the target itself (the env approaches it by at most one step's bounds).
    """
    pose = np.asarray(pose, np.float64)
    target = np.asarray(target, np.float64)
    goal_yaw = target[2] if len(target) > 2 and align_yaw else None
    d = target[:2] - pose[:2]
    dist = float(np.hypot(*d))
    if action_type == "pose":
        yaw = goal_yaw if goal_yaw is not None else (np.arctan2(d[1], d[0]) if dist > 1e-6 else pose[2])
        return np.array([target[0], target[1], wrap_angle(yaw)], np.float32)
    if action_type == "continuous":
        c, s = np.cos(pose[2]), np.sin(pose[2])
        m = bounds.max_move
        fwd, left = np.clip(c * d[0] + s * d[1], -m, m), np.clip(-s * d[0] + c * d[1], -m, m)
        want = goal_yaw if goal_yaw is not None else (np.arctan2(d[1], d[0]) if dist > tolerance else pose[2])
        turn = np.clip(np.rad2deg(wrap_angle(want - pose[2])), -bounds.max_turn_deg, bounds.max_turn_deg)
        return np.array([fwd, left, turn], np.float32)
    if action_type != "discrete":
        raise ValueError(f"unknown action_type {action_type!r}")
    half_turn = np.deg2rad(bounds.discrete_turn_deg) / 2
    if dist > tolerance:
        err = float(wrap_angle(np.arctan2(d[1], d[0]) - pose[2]))
        if abs(err) > half_turn:
            return TURN_LEFT if err > 0 else TURN_RIGHT
        return FORWARD
    if goal_yaw is not None:
        err = float(wrap_angle(goal_yaw - pose[2]))
        if abs(err) > min(half_turn, np.deg2rad(yaw_tolerance_deg)):
            return TURN_LEFT if err > 0 else TURN_RIGHT
    return NOOP


class RandomWalkPolicy:
    """A wandering camera: mostly forward, turning in persistent runs, turning away after bumping a wall."""

    def __init__(self, env, seed: int | None = None, forward_prob: float = 0.6, mean_turn_steps: float = 3.0):
        self.action_type, self.bounds, self.action_space = _settings(env)
        self.names = getattr(env.unwrapped, "discrete_actions", None)
        self.rng = np.random.default_rng(seed)
        self.forward_prob, self.mean_turn_steps = float(forward_prob), float(mean_turn_steps)
        self._turn, self._left = 0, True

    def reset(self, obs=None, info=None):
        self._turn = 0

    def act(self, obs=None, info=None):
        rng = self.rng
        if info is not None and info.get("collided") and self._turn == 0:
            self._turn, self._left = int(rng.integers(3, 8)), bool(rng.random() < 0.5)
        if self._turn == 0 and rng.random() > self.forward_prob:
            self._turn = 1 + int(rng.geometric(1.0 / self.mean_turn_steps))
            self._left = bool(rng.random() < 0.5)
        turning = self._turn > 0
        self._turn = max(0, self._turn - 1)
        if self.action_type == "discrete":
            return env_action((TURN_LEFT if self._left else TURN_RIGHT) if turning else FORWARD, self.names)
        b = self.bounds
        if self.action_type == "continuous":
            if turning:
                return np.array([0.0, 0.0, (1 if self._left else -1) * b.max_turn_deg * rng.uniform(0.5, 1)], np.float32)
            return np.array([b.max_move * rng.uniform(0.5, 1), 0.0, b.max_turn_deg * rng.uniform(-0.2, 0.2)], np.float32)
        pose = np.asarray(info["pose"], np.float64) if info is not None else np.zeros(3)
        if turning:
            return np.array([pose[0], pose[1], wrap_angle(pose[2] + (1 if self._left else -1) * np.deg2rad(b.max_turn_deg))],
                            np.float32)
        c, s = np.cos(pose[2]), np.sin(pose[2])
        return np.array([pose[0] + b.max_move * c, pose[1] + b.max_move * s, pose[2]], np.float32)


class WaypointFollower:
    """Visits waypoints (M, 2) or (M, 3) in order; with a yaw column it turns to the last one's yaw.

    ``done`` becomes True once the last waypoint is reached (within ``tolerance`` and, with yaw,
    ``yaw_tolerance_deg``; by default the env's arrival tolerances, else 0.55 m and 10 degrees).
    """

    def __init__(self, env, waypoints=None, tolerance: float | None = None, yaw_tolerance_deg: float | None = None):
        self.action_type, self.bounds, self.action_space = _settings(env)
        self.names = getattr(env.unwrapped, "discrete_actions", None)
        self.tolerance, self.yaw_tolerance_deg = _tolerances(env, tolerance, yaw_tolerance_deg)
        self.set_waypoints(np.zeros((0, 2)) if waypoints is None else waypoints)

    def set_waypoints(self, waypoints):
        w = np.asarray(waypoints, np.float64)
        if w.ndim != 2 or w.shape[1] not in (2, 3) or not np.all(np.isfinite(w)):
            raise ValueError(f"waypoints must be finite (M, 2) or (M, 3) arrays of (x, y[, yaw]), got shape {w.shape}")
        self.waypoints, self.index, self.done = w, 0, len(w) == 0

    def reset(self, obs=None, info=None):
        self.index, self.done = 0, len(self.waypoints) == 0

    def act(self, obs, info):
        pose = np.asarray(info["pose"], np.float64)
        while self.index < len(self.waypoints) - 1 and \
                np.hypot(*(self.waypoints[self.index, :2] - pose[:2])) <= self.tolerance:
            self.index += 1
        if self.done or len(self.waypoints) == 0:
            return env_action(steer(pose, pose, self.action_type, self.bounds), self.names)
        target = self.waypoints[self.index]
        last = self.index == len(self.waypoints) - 1
        if last and self._reached(pose, target):
            self.done = True
        return env_action(steer(pose, target, self.action_type, self.bounds, align_yaw=last,
                                tolerance=self.tolerance, yaw_tolerance_deg=self.yaw_tolerance_deg), self.names)

    def _reached(self, pose, target) -> bool:
        if np.hypot(*(target[:2] - pose[:2])) > self.tolerance:
            return False
        return len(target) < 3 or np.rad2deg(abs(wrap_angle(target[2] - pose[2]))) <= self.yaw_tolerance_deg


class ReturnToStartPolicy(WaypointFollower):
    """Goes back to the episode's start pose along the path it came (breadcrumbs, so it gets round walls).

    It records every pose in ``info["poses"]`` (the reset info holds the start and any scripted
    excursion); on the first ``act`` after ``reset`` it turns the path, reversed and thinned to
    ``spacing`` metres, into waypoints ending at ``info["start_pose"]``.
    """

    def __init__(self, env, spacing: float = 0.75, **kwargs):
        super().__init__(env, **kwargs)
        self.spacing = float(spacing)
        self.path: list = []
        self._planned = False

    def reset(self, obs=None, info=None):
        self.path = [] if info is None else [np.asarray(info["poses"], np.float64)]
        self.start = None if info is None else np.asarray(info["start_pose"], np.float64)
        self._planned = False
        super().reset()
        self.done = False                                 # nothing planned yet: not there yet

    def act(self, obs, info):
        if not self._planned:
            self.set_waypoints(self._breadcrumbs(np.asarray(info["pose"], np.float64)))
            self._planned = True
        return super().act(obs, info)

    def observe(self, info):
        """Record the poses of a step taken by someone else (before asking to return)."""
        self.path.append(np.asarray(info["poses"], np.float64))
        self._planned = self.done = False

    def _breadcrumbs(self, pose) -> np.ndarray:
        """The recorded path reversed, thinned to ``spacing`` metres, ending at the start pose -> (M, 3)."""
        path = np.concatenate(self.path + [pose[None]])
        start = self.start if self.start is not None else path[0]
        pts, last = [], pose[:2]
        for p in path[::-1]:
            if np.hypot(*(p[:2] - last)) >= self.spacing and np.hypot(*(p[:2] - start[:2])) >= self.spacing:
                pts.append(p[:2])
                last = p[:2]
        w = np.array(pts + [start[:2]])
        return np.column_stack([w, np.full(len(w), start[2])])   # only the last waypoint's yaw is used
