"""Tasks: explore, return-to-start and goal-view, each a ``CamWorldEnv`` that overrides hooks.

Every task runs in both worlds: the learned one (``ContextAsMemory-*``) and the sim twin
(``CamWorld-*``). The rewards use poses only (never pixels), so they are identical in the two and
computable for image starts; what differs is what the agent sees, and so whether it can succeed.

Letters: T frames per step, L excursion frames, R rays, S samples per ray.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from camworld.envs.world_env import CamWorldEnv
from camworld.geometry import DEFAULT_HFOV_DEG, interpolate_poses, wrap_angle
from camworld.metrics import psnr
from camworld.sim.trajectories import turn_in_place

ARRIVAL_DISTANCE_M = 0.5     # "arrived": within max(0.5 m, 0.55 x the discrete move) ...
ARRIVAL_YAW_DEG = 10.0       # ... and max(10 degrees, 0.55 x the discrete turn) of the goal pose
ARRIVAL_STEP_FRACTION = 0.55  # > 1/2 so that a discrete agent can always get there
YAW_COST_M_PER_RAD = 1.0     # pose error = distance (m) + 1 m per radian of yaw error
ARRIVAL_BONUS = 10.0
WRONG_STOP_PENALTY = 5.0     # stop_to_arrive: stopping away from the goal ends the episode with this cost (more than
                             # a random walk loses in progress, so that stopping at once is not the best blind policy)
EXCURSION_DEG_PER_FRAME = 10.0   # scripted turns, as the paper's "rotate away and back" evaluation
EXCURSION_M_PER_FRAME = 0.25     # scripted walks


# ---------------------------------------------------------------- scripted excursions


def excursion_poses(kind: str, start: np.ndarray, rng: np.random.Generator, scene=None, clearance: float = 0.3):
    """The away half of a paper-style revisit trajectory, starting after ``start`` -> poses (L, 3).

    - ``"rotate"``: turn in place by 60-180 degrees, left or right, 10 degrees per frame.
    - ``"walk"``: walk backwards 1.5-3 m (still looking where it looked), 0.25 m per frame, then
      turn away by 45-135 degrees. The walk must be free of walls in ``scene`` (8 directions are
      tried; without a free one it becomes a rotation).
    """
    start = np.asarray(start, np.float64)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "rotate":
        return _turn(start, sign * np.deg2rad(rng.uniform(60.0, 180.0)))
    if kind != "walk":
        raise ValueError(f"unknown excursion kind {kind!r}; choose 'rotate' or 'walk'")
    dist = float(rng.uniform(1.5, 3.0))
    turn = sign * np.deg2rad(rng.uniform(45.0, 135.0))
    for extra in np.deg2rad([0, 45, -45, 90, -90, 135, -135, 180]):
        back = start[2] + np.pi + extra                         # walking direction
        end_xy = start[:2] + dist * np.array([np.cos(back), np.sin(back)])
        if scene is None or scene.segment_free(start[:2], end_xy, clearance):
            n = max(2, int(round(dist / EXCURSION_M_PER_FRAME)))
            walk = interpolate_poses(start, np.array([end_xy[0], end_xy[1], start[2]]), n)
            return np.concatenate([walk, _turn(walk[-1], turn)])
    return _turn(start, sign * np.deg2rad(rng.uniform(60.0, 180.0)))


def _turn(pose: np.ndarray, theta: float) -> np.ndarray:
    out = turn_in_place(pose, theta, EXCURSION_DEG_PER_FRAME, min_frames=2)
    out[:, 2] = wrap_angle(out[:, 2])
    return out


def pose_error(pose, goal) -> tuple:
    """-> (distance m, |yaw error| rad, cost = distance + 1 m/rad * |yaw error|)."""
    d = float(np.hypot(goal[0] - pose[0], goal[1] - pose[1]))
    y = float(abs(wrap_angle(goal[2] - pose[2])))
    return d, y, d + YAW_COST_M_PER_RAD * y


# ---------------------------------------------------------------- explore


class CoverageGrid:
    """Floor area seen so far, on a coarse grid, from camera poses and the horizontal FOV.

    Each frame casts ``rays`` rays across the FOV out to ``view_range`` metres, sampled every half
    cell; with a known scene a ray stops at the first solid cell (walls occlude), without one
    (image starts) it sees ``view_range``. Every grid cell a ray sample falls in counts as seen.
    """

    def __init__(self, cell: float = 0.5, view_range: float = 6.0, rays: int = 16, scene=None,
                 hfov_deg: float = DEFAULT_HFOV_DEG):
        self.cell, self.scene = float(cell), scene
        half = np.deg2rad(hfov_deg) / 2
        self.angles = np.linspace(-half, half, rays)                          # (R,)
        self.dists = np.arange(0.5 * cell, view_range + 1e-9, 0.5 * cell)     # (S,)
        self.seen: set = set()

    @property
    def area(self) -> float:
        return len(self.seen) * self.cell ** 2

    def update(self, poses) -> float:
        """Mark what ``poses`` (N, 3) see; returns the newly seen area in m^2."""
        before = len(self.seen)
        for p in np.asarray(poses, np.float64).reshape(-1, 3):
            a = p[2] + self.angles                                           # (R,)
            pts = p[:2] + self.dists[None, :, None] * np.stack([np.cos(a), np.sin(a)], -1)[:, None]  # (R, S, 2)
            if self.scene is not None:
                blocked = np.logical_or.accumulate(~self.scene.is_free(pts, clearance=0.0), axis=1)
                pts = pts[~blocked]
            else:
                pts = pts.reshape(-1, 2)
            ij = np.floor(pts / self.cell).astype(np.int64)
            self.seen.update(zip(ij[:, 0].tolist(), ij[:, 1].tolist()))
        return (len(self.seen) - before) * self.cell ** 2


class ExploreEnv(CamWorldEnv):
    """
    ## Description

    Explore: see as much new floor as possible. The floor is a coarse grid (0.5 m cells); a cell
    counts as seen once a ray of the camera's horizontal FOV (52.67 degrees, 16 rays, out to 6 m)
    reaches it. In episodes started in a sim scene (both ids) walls stop the rays; in image starts
    the rays see the full 6 m. The reward uses poses only, so it is the same in the learned world and
    in the sim twin.

    ## Action Space

    As ``CamWorldEnv``: ``Discrete(7)`` (noop, forward, backward, turn left, turn right, strafe
    left, strafe right; 1 m and 12 degrees per step at ``frames_per_step=4``), or continuous/pose.

    ## Observation Space

    ``Box(0, 255, (H, W, 3), uint8)``: the last frame of the segment.

    ## Rewards

    The floor area (m^2) first seen during the step. What the start frame sees is free.

    ## Termination

    None; truncation after ``max_episode_steps`` (registered: 200).

    ## Info

    As ``CamWorldEnv``, plus ``seen_area_m2`` (float, total) and ``new_area_m2`` (float, this step).

    ## Arguments

    As ``CamWorldEnv``, plus ``cell`` (m, 0.5) and ``view_range`` (m, 6.0).

    ## Registered ids

    ``CamWorld-Explore-v0``, ``ContextAsMemory-Explore-v0``; or ``task="explore"``.
    """

    def __init__(self, *args, cell: float = 0.5, view_range: float = 6.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not cell > 0 or not view_range > 0:
            raise ValueError(f"cell and view_range must be > 0 metres, got cell={cell}, view_range={view_range}")
        self.cell, self.view_range = float(cell), float(view_range)
        self._grid, self._new = None, 0.0

    def _task_start(self, frames, poses):
        self._grid = CoverageGrid(self.cell, self.view_range, scene=self.scene)
        self._grid.update(poses)
        self._new = 0.0

    def _task_reward(self, frames, poses):
        self._new = self._grid.update(poses)
        return self._new, False

    def _task_info(self):
        return {"seen_area_m2": float(self._grid.area), "new_area_m2": float(self._new)}


# ---------------------------------------------------------------- reaching a pose


class _ReachPoseEnv(CamWorldEnv):
    """Shared by return and goal-view: after a scripted excursion, reach ``goal_pose``."""

    excursion_kinds = ("rotate", "walk")   # what ``excursion`` accepts
    random_kinds = ("rotate", "walk")      # what ``excursion=None`` draws from, per episode

    def __init__(self, *args, excursion: str | None = None, arrival_distance: float | None = None,
                 arrival_yaw_deg: float | None = None, stop_to_arrive: bool = False,
                 wrong_stop_penalty: float = WRONG_STOP_PENALTY, wrong_stop_ends: bool = True,
                 stop_credit: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(stop_to_arrive, (bool, np.bool_)):
            raise ValueError(f"stop_to_arrive must be True or False, got {stop_to_arrive!r}")
        self.stop_to_arrive = bool(stop_to_arrive)
        if not wrong_stop_penalty >= 0:
            raise ValueError(f"wrong_stop_penalty must be >= 0, got {wrong_stop_penalty}")
        self.wrong_stop_penalty = float(wrong_stop_penalty)
        if not isinstance(wrong_stop_ends, (bool, np.bool_)):
            raise ValueError(f"wrong_stop_ends must be True or False, got {wrong_stop_ends!r}")
        self.wrong_stop_ends = bool(wrong_stop_ends)
        if not stop_credit >= 0:
            raise ValueError(f"stop_credit must be >= 0 (pose error, m + rad), got {stop_credit}")
        self.stop_credit = float(stop_credit)
        self._stopped = False
        b = self.bounds
        self.arrival_distance = float(arrival_distance if arrival_distance is not None
                                      else max(ARRIVAL_DISTANCE_M, ARRIVAL_STEP_FRACTION * b.discrete_move))
        self.arrival_yaw_deg = float(arrival_yaw_deg if arrival_yaw_deg is not None
                                     else max(ARRIVAL_YAW_DEG, ARRIVAL_STEP_FRACTION * b.discrete_turn_deg))
        if not self.arrival_distance > 0 or not self.arrival_yaw_deg > 0:
            raise ValueError(f"arrival_distance and arrival_yaw_deg must be > 0, got {self.arrival_distance}, "
                             f"{self.arrival_yaw_deg}")
        if excursion is not None and excursion not in self.excursion_kinds:
            raise ValueError(f"excursion must be one of {self.excursion_kinds} or None (random), got {excursion!r}")
        self.excursion = excursion
        self.goal_pose = self.goal_frame = None
        self._cost = 0.0

    def _pick_kind(self) -> str:
        rng = self.np_random
        return self.excursion or self.random_kinds[int(rng.integers(len(self.random_kinds)))]

    def _task_excursion(self):
        return excursion_poses(self._pick_kind(), self.pose, self.np_random, self.scene)

    def _set_goal(self, frame, pose):
        self.goal_frame, self.goal_pose = np.asarray(frame).copy(), np.asarray(pose, np.float64).copy()
        self._stopped = False
        self._cost = pose_error(self.pose, self.goal_pose)[2]

    def _at_goal(self) -> bool:
        d, y, _ = pose_error(self.pose, self.goal_pose)
        return d <= self.arrival_distance and np.rad2deg(y) <= self.arrival_yaw_deg

    def _arrived(self) -> bool:
        """Success: at the goal pose; with ``stop_to_arrive`` also having stopped there."""
        return self._at_goal() and (self._stopped or not self.stop_to_arrive)

    def begin_step(self, action):
        poses = super().begin_step(action)
        if self.stop_to_arrive:   # the stop action: noop, a zero move, or a pose target at the current camera,
            # read from the unobstructed end (a move that a wall blocks is not a stop)
            here = self.extrinsics if self.six_dof else self.pose
            self._stopped = bool(np.allclose(self._end_target, here, rtol=0.0, atol=1e-9))
        return poses

    def _task_reward(self, frames, poses):
        cost = pose_error(self.pose, self.goal_pose)[2]
        reward, self._cost = self._cost - cost, cost
        if self.stop_to_arrive and self._stopped:   # the agent says "here": right (+10, it ends) or wrong
            if self._at_goal():                     # (-wrong_stop_penalty; it ends unless wrong_stop_ends is False)
                return reward + ARRIVAL_BONUS, True
            near = ARRIVAL_BONUS * max(0.0, 1.0 - cost / self.stop_credit) if self.stop_credit > 0 else 0.0
            return reward + near - self.wrong_stop_penalty, self.wrong_stop_ends
        arrived = self._arrived()
        return reward + (ARRIVAL_BONUS if arrived else 0.0), arrived

    def _task_info(self):
        d, y, _ = pose_error(self.pose, self.goal_pose)
        return {"goal_pose": self.goal_pose.copy(), "goal_distance": d, "goal_yaw_error_deg": float(np.rad2deg(y)),
                "arrived": bool(self._arrived()), "at_goal": bool(self._at_goal()),
                "goal_psnr": psnr(self.frame, self.goal_frame)}


class ReturnEnv(_ReachPoseEnv):
    """
    ## Description

    Return to start. After the start frame the camera is driven through a forced scripted
    excursion, generated by the world like any other frames (the paper's revisit trajectories):
    ``"rotate"`` turns in place by 60-180 degrees; ``"walk"`` walks backwards 1.5-3 m and then
    turns away by 45-135 degrees. The agent then has to bring the camera back to the start pose.
    The excursion frames come in the reset ``info["frames"]``; ``info["goal_psnr"]`` compares the
    current frame with the start frame, so a world that remembers shows a high PSNR on arrival.

    ## Action Space

    As ``CamWorldEnv``: ``Discrete(7)`` (noop, forward, backward, turn left, turn right, strafe
    left, strafe right; 1 m and 12 degrees per step at ``frames_per_step=4``), or continuous/pose.

    ## Observation Space

    ``Box(0, 255, (H, W, 3), uint8)``: the last frame of the segment.

    ## Rewards

    Progress: the decrease of the pose error (distance in m + 1 m per radian of yaw error) during
    the step, plus 10 on arrival at the start pose: within ``arrival_distance`` (default
    max(0.5 m, 0.55 x the discrete move): 0.55 m at ``frames_per_step=4``) and ``arrival_yaw_deg``
    (default max(10, 0.55 x the discrete turn) degrees: 10 at 4), so that discrete agents can get there.

    ## Termination

    Terminates on arrival; truncation after ``max_episode_steps`` (registered: 100).

    ## Info

    As ``CamWorldEnv``, plus ``goal_pose`` (= ``start_pose``), ``goal_distance`` (m),
    ``goal_yaw_error_deg``, ``arrived`` (bool), ``goal_psnr`` (dB, current vs start frame).

    ## Arguments

    As ``CamWorldEnv``, plus ``excursion``: "rotate", "walk" or None (random per episode), and
    ``arrival_distance`` (m), ``arrival_yaw_deg`` (None: the defaults above).

    ## Registered ids

    ``CamWorld-Return-v0``, ``ContextAsMemory-Return-v0``; or ``task="return"``.
    """

    def _task_start(self, frames, poses):
        self._set_goal(frames[0], poses[0])


class GoalViewEnv(_ReachPoseEnv):
    """
    ## Description

    Goal view. A scripted tour (a walk-and-turn excursion followed by a turn, generated by the
    world) shows the agent the place; one frame of that tour whose pose error from where the tour
    ends is at least 1 (metres plus radians of yaw) becomes the goal. The agent observes its current frame and
    the goal frame and must reach the pose that reproduces the goal. Only a world that remembers
    makes this solvable: if the world regenerates the place differently on the way back, the goal
    frame no longer tells where to go (``info["goal_psnr"]`` measures it).

    ## Action Space

    As ``CamWorldEnv``: ``Discrete(7)`` (noop, forward, backward, turn left, turn right, strafe
    left, strafe right; 1 m and 12 degrees per step at ``frames_per_step=4``), or continuous/pose.

    ## Observation Space

    ``Dict(frame=Box(0, 255, (H, W, 3), uint8), goal=Box(0, 255, (H, W, 3), uint8))``: the last
    frame of the segment and the goal frame (constant during the episode). Use
    ``camworld.agents.GoalFrameExtractor`` with SB3's ``MultiInputPolicy``.

    ## Rewards

    Progress: the decrease of the pose error to the goal pose (distance in m + 1 m per radian of
    yaw error) during the step, plus 10 on arrival (within ``arrival_distance`` and
    ``arrival_yaw_deg``, as in ``ReturnEnv``: 0.55 m and 10 degrees at ``frames_per_step=4``).
    With ``stop_to_arrive=True`` arriving takes the stop action (noop; a zero continuous move; a pose
    target at the current pose) at the goal: +10 there, -``wrong_stop_penalty`` (5) anywhere else; a
    wrong stop ends the episode unless ``wrong_stop_ends=False`` (then the agent pays and goes on).
    ``stop_credit`` (m + rad, default 0 = none): a wrong stop still earns 10 x max(0, 1 - error / stop_credit),
    so a stop near the goal is worth more than one far off (graded credit that PPO can climb).

    ## Termination

    Terminates on arrival (with ``stop_to_arrive``: on any stop, or only on the right one with
    ``wrong_stop_ends=False``); truncation after ``max_episode_steps``
    (registered: 100).

    ## Info

    As ``CamWorldEnv``, plus ``goal_pose``, ``goal_distance`` (m), ``goal_yaw_error_deg``,
    ``arrived`` (bool, success), ``at_goal`` (bool, within the tolerances), ``goal_psnr`` (dB, current vs goal frame).

    ## Arguments

    As ``CamWorldEnv``, plus ``excursion``: "rotate", "walk" or None (random): the first leg of the
    tour; or "glance": the whole tour looks 20-40 degrees to one side and back, and the goal is the side
    view, still partly in sight from where the agent starts (1-3 discrete turns away). Which way to turn is
    then visible, and nothing else tells it: with ``max_episode_steps=8`` a constant turn reaches half the
    goals (those on its side), and an agent that reads the frames can reach all of them. "glance-away": the
    same glance and goal, then a look 60-100 degrees to the other side and back, so that the last frames before
    the agent starts (what a ``recent`` window of the default k = 8 holds) all face away from the goal, and
    only a world that retrieves it shows the goal's unseen side again as the tour showed it (with
    ``stop_to_arrive``, ``camworld eval goal-cue`` measures it: the view at the goal tells arrival with AUC 0.88
    in the shipped world, 0.53 with ``recent``). And
    ``arrival_distance`` (m), ``arrival_yaw_deg`` (None: as in ``ReturnEnv``), and
    ``min_goal_distance`` (m, default 0): goals at least this far from where the tour ends (the farthest
    frame if none is). With the defaults a rotate tour keeps the camera in place, so turning at every step
    reaches 71% of the goals blind (``camworld eval agents`` reports it); ``excursion="walk",
    min_goal_distance=1.0`` makes every goal need a move that only the frames can tell.
    ``stop_to_arrive`` (default False): the agent must say where the goal is by stopping there (passing
    through it is not arriving), so it has to recognise the goal view: no constant action succeeds, and
    only a world that regenerates the goal's place as it showed it lets the frames tell when to stop.
    ``info["at_goal"]``: within the arrival tolerances, stopped or not.

    ## Registered ids

    ``CamWorld-GoalView-v0``, ``ContextAsMemory-GoalView-v0``; or ``task="goal-view"``.
    """

    MIN_GOAL_COST = 1.0   # m-equivalent pose error between the goal and where the tour ends (1 m or ~57 deg)
    excursion_kinds = ("rotate", "walk", "glance", "glance-away")
    GLANCE_DEG = (20.0, 40.0)   # "glance": look this far to one side and back; the goal stays partly in view
    AWAY_DEG = (60.0, 100.0)    # "glance-away": then this far to the other side and back, the last thing shown

    def __init__(self, *args, min_goal_distance: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not min_goal_distance >= 0:
            raise ValueError(f"min_goal_distance must be >= 0 metres, got {min_goal_distance}")
        self.min_goal_distance = float(min_goal_distance)
        self._goal_index = None   # set by a tour that picks its goal itself (glance-away)

    def _observation_space(self):
        return spaces.Dict({"frame": self.frame_space, "goal": self.frame_space})

    def _observation(self, frame):
        return {"frame": frame.copy(), "goal": self.goal_frame.copy()}

    def _task_excursion(self):
        rng = self.np_random
        kind = self._pick_kind()
        self._goal_index = None
        if kind in ("glance", "glance-away"):   # look to one side and back: the goal is the side view, 1-3 turns away
            theta = (1 if rng.random() < 0.5 else -1) * np.deg2rad(rng.uniform(*self.GLANCE_DEG))
            away = _turn(self.pose, theta)
            tour = [away, _turn(away[-1], -theta)]
            if kind == "glance-away":   # then look the other way, further, and back: the goal view is old news
                self._goal_index = len(away)   # in the reset frames, which begin with the start frame
                phi = -np.sign(theta) * np.deg2rad(rng.uniform(*self.AWAY_DEG))
                other = _turn(tour[-1][-1], phi)
                tour += [other, _turn(other[-1], -phi)]
            return np.concatenate(tour)
        first = excursion_poses(kind, self.pose, rng, self.scene)
        second = _turn(first[-1], (1 if rng.random() < 0.5 else -1) * np.deg2rad(rng.uniform(60.0, 120.0)))
        return np.concatenate([first, second])

    def _task_start(self, frames, poses):
        if self._goal_index is not None:   # glance-away: the first side view, not the farthest
            j = self._goal_index
            return self._set_goal(frames[j], poses[j])
        end = poses[-1]
        cost = np.array([pose_error(p, end)[2] for p in poses[:-1]])
        ok = cost >= min(self.MIN_GOAL_COST, cost.max())
        if self.min_goal_distance > 0:   # goals that a turn in place cannot reach (when the tour has any)
            dist = np.hypot(*(poses[:-1, :2] - end[:2]).T)
            ok = ok & (dist >= min(self.min_goal_distance, dist.max()))
            if not ok.any():
                ok = dist >= dist.max()
        far = np.flatnonzero(ok)
        j = int(far[self.np_random.integers(len(far))])
        self._set_goal(frames[j], poses[j])


TASKS = {None: CamWorldEnv, "explore": ExploreEnv, "return": ReturnEnv, "goal-view": GoalViewEnv}
