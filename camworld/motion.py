"""Actions -> camera poses: the three action types, their bounds, validation and walls.

The core's camera motion: the envs (``camworld.envs.actions`` adds the Gymnasium spaces), training
data and benchmarks move the camera by these same rules.

Movement is camera control, as in the paper: an action says where the camera goes during the next
segment of ``T = frames_per_step`` generated frames. Everything here is a pure function of the
current planar pose ``(x, y, yaw)`` (DESIGN.md §4: metres, radians, yaw = 0 looks along +x,
positive yaw turns left).

Bounds follow the paper's trajectories (§3.4, supplementary): 3-6 m of travel and under 60 degrees
of yaw per 77 frames at 30 fps. Generated frames are ``frame_stride`` sim frames apart (the model's
``TrainConfig.frame_stride``, 4 by default: 7.5 generated frames per second), so one generated frame
may move at most ``6 / 77 * stride`` metres (0.312 m) and turn ``60 / 77 * stride`` degrees (3.12
degrees), and one env step ``frames_per_step`` times that.

6-DoF pose actions (a world whose model was trained on 6-DoF cameras): an absolute target
``(x, y, z, yaw, pitch, roll)`` (metres, radians; ``geometry.euler_to_extrinsics``) for the segment's
end, approached by at most one step's travel (in 3D) and turn (the angle of the rotation between the
two cameras), and interpolated frame by frame: positions on a straight line, rotations by slerp.

Letters: T frames per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camworld.geometry import as_extrinsics, euler_to_extrinsics, interpolate_poses, wrap_angle

SIM_FPS = 30                 # the paper's videos (and camworld.sim trajectories) run at 30 fps
PAPER_FRAMES = 77            # one captioned segment of the paper's dataset
PAPER_MAX_TRAVEL_M = 6.0     # at most 6 m of travel per 77 frames ...
PAPER_MAX_YAW_DEG = 60.0     # ... and under 60 degrees of yaw
DEFAULT_FRAME_STRIDE = 4     # sim frames per generated frame (TrainConfig.frame_stride)
ACTION_TYPES = ("discrete", "continuous", "pose")

# Discrete actions: (name, forward sign, strafe-left sign, yaw-left sign), per step scaled by the step sizes.
DISCRETE_ACTIONS = (
    ("noop", 0, 0, 0),
    ("forward", 1, 0, 0),
    ("backward", -1, 0, 0),
    ("turn_left", 0, 0, 1),
    ("turn_right", 0, 0, -1),
    ("strafe_left", 0, 1, 0),
    ("strafe_right", 0, -1, 0),
)
DISCRETE_NAMES = tuple(a[0] for a in DISCRETE_ACTIONS)
MOVE_PER_FRAME_M = 0.25      # discrete forward/backward/strafe: 0.25 m per generated frame
TURN_PER_FRAME_DEG = 3.0     # discrete turns: 3 degrees per generated frame
CLEARANCE_M = 0.3            # the camera keeps this far from walls (scene.is_free's default)
POSE_ACTION_LIMIT_M = 1000.0  # |x|, |y| (and |z|) of a "pose" action (an absolute target in world metres)
POSE6_FIELDS = ("x m", "y m", "z m", "yaw rad", "pitch rad", "roll rad")   # a 6-DoF "pose" action


@dataclass(frozen=True)
class ActionBounds:
    """Per-step limits of camera motion for one (frames_per_step, frame_stride)."""

    frames_per_step: int
    frame_stride: int = DEFAULT_FRAME_STRIDE

    @property
    def move_per_frame(self) -> float:
        """Metres one generated frame may travel (paper: 6 m per 77 frames at 30 fps)."""
        return PAPER_MAX_TRAVEL_M / PAPER_FRAMES * self.frame_stride

    @property
    def turn_per_frame_deg(self) -> float:
        """Degrees one generated frame may turn (paper: 60 degrees per 77 frames at 30 fps)."""
        return PAPER_MAX_YAW_DEG / PAPER_FRAMES * self.frame_stride

    @property
    def max_move(self) -> float:
        return self.move_per_frame * self.frames_per_step

    @property
    def max_turn_deg(self) -> float:
        return self.turn_per_frame_deg * self.frames_per_step

    @property
    def discrete_move(self) -> float:
        return min(MOVE_PER_FRAME_M, self.move_per_frame) * self.frames_per_step

    @property
    def discrete_turn_deg(self) -> float:
        return min(TURN_PER_FRAME_DEG, self.turn_per_frame_deg) * self.frames_per_step

    @property
    def fps(self) -> float:
        """Generated frames per second of video."""
        return SIM_FPS / self.frame_stride


def _as_vector(action, action_type: str) -> np.ndarray:
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"a {action_type} action must be 3 numbers, got {action!r}") from e
    if a.shape != (3,):
        raise ValueError(f"a {action_type} action must have shape (3,), got {a.shape}: "
                         + ("(forward m, strafe-left m, yaw-left deg)" if action_type == "continuous"
                            else "(x m, y m, yaw rad), an absolute target pose"))
    if not np.all(np.isfinite(a)):
        raise ValueError(f"a {action_type} action must be finite, got {a.tolist()}")
    return a


def discrete_index(action, names: tuple = DISCRETE_NAMES) -> int:
    """Validate a discrete action (int, numpy integer or 0-d integer array) -> int. ``names``: the action
    names of an env with a reduced action set (``discrete_actions``); the index is then into those."""
    a = np.asarray(action)
    if a.shape != () or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"a discrete action must be one integer in [0, {len(names)}), got {action!r} "
                         f"(dtype {a.dtype}, shape {a.shape}); the actions are {_listing(names)}")
    i = int(a)
    if not 0 <= i < len(names):
        raise ValueError(f"discrete action {i} is out of range [0, {len(names)}); the actions are {_listing(names)}")
    return i


def _listing(names) -> str:
    return ", ".join(f"{i}={n}" for i, n in enumerate(names))


def discrete_subset(names) -> tuple:
    """Validate a reduced discrete action set (names from ``DISCRETE_NAMES``, e.g. ("noop", "turn_left",
    "turn_right")) -> the indices of those actions in ``DISCRETE_ACTIONS``, in the order given."""
    known = list(DISCRETE_NAMES)
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise ValueError(f"discrete_actions must be a list of action names from {known}, got {names!r}")
    names = list(names)
    if not names:
        raise ValueError(f"discrete_actions must name at least one action of {known}, got none")
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"discrete_actions: unknown action name(s) {bad}; the names are {known}")
    if len(set(names)) != len(names):
        raise ValueError(f"discrete_actions names an action twice: {names}")
    return tuple(known.index(n) for n in names)


def end_pose(action, action_type: str, pose: np.ndarray, bounds: ActionBounds) -> tuple:
    """The pose the camera heads for by the end of the segment.

    Args:
        action: a discrete index, a continuous ``(forward m, strafe-left m, yaw-left deg)`` or an
            absolute ``(x, y, yaw rad)`` target.
        pose: current planar pose (3,).
    Returns:
        ``(end (3,), clipped)``: the unobstructed end pose and whether a "pose" target was farther
        than one step allows (it is then approached by the per-step bounds).
    Raises:
        ValueError: malformed or out-of-bounds actions, with what was expected.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if action_type == "discrete":
        _, f, s, y = DISCRETE_ACTIONS[discrete_index(action)]
        fwd, left, yaw = f * bounds.discrete_move, s * bounds.discrete_move, np.deg2rad(y * bounds.discrete_turn_deg)
        return _body_move(pose, fwd, left, yaw), False
    if action_type == "continuous":
        a = _as_vector(action, "continuous")
        hi = np.array([bounds.max_move, bounds.max_move, bounds.max_turn_deg])
        over = np.abs(a) > hi * (1 + 1e-5) + 1e-6
        if np.any(over):
            j = int(np.flatnonzero(over)[0])
            name = ("forward (m)", "strafe-left (m)", "yaw-left (deg)")[j]
            raise ValueError(
                f"continuous action {name} = {a[j]:.4g} exceeds the per-step bound {hi[j]:.4g} "
                f"(frames_per_step={bounds.frames_per_step} x {hi[j] / bounds.frames_per_step:.4g} per generated "
                "frame, the paper's 6 m and 60 degrees per 77 frames at 30 fps); clip the action to "
                "env.action_space (np.clip(a, env.action_space.low, env.action_space.high)) or raise frames_per_step")
        a = np.clip(a, -hi, hi)
        return _body_move(pose, a[0], a[1], np.deg2rad(a[2])), False
    if action_type == "pose":
        a = _as_vector(action, "pose")
        if np.any(np.abs(a[:2]) > POSE_ACTION_LIMIT_M):
            raise ValueError(f"pose action (x, y) = {a[:2].tolist()} is outside +-{POSE_ACTION_LIMIT_M:g} m")
        return approach(pose, a, bounds)
    raise ValueError(f"action_type must be one of {ACTION_TYPES}, got {action_type!r}")


def _body_move(pose: np.ndarray, fwd: float, left: float, yaw: float) -> np.ndarray:
    """Translate in the camera's frame at the start of the step, then add yaw."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    return np.array([pose[0] + c * fwd - s * left, pose[1] + s * fwd + c * left, pose[2] + yaw])


def approach(pose: np.ndarray, target: np.ndarray, bounds: ActionBounds) -> tuple:
    """Move toward an absolute target by at most one step's travel and turn. -> (end (3,), clipped)."""
    pose, target = np.asarray(pose, np.float64), np.asarray(target, np.float64)
    d = target[:2] - pose[:2]
    dist = float(np.hypot(*d))
    dyaw = float(wrap_angle(target[2] - pose[2]))
    max_turn = np.deg2rad(bounds.max_turn_deg)
    clipped = dist > bounds.max_move + 1e-9 or abs(dyaw) > max_turn + 1e-9
    if dist > bounds.max_move:
        d = d * (bounds.max_move / dist)
    dyaw = float(np.clip(dyaw, -max_turn, max_turn))
    return np.array([pose[0] + d[0], pose[1] + d[1], pose[2] + dyaw]), bool(clipped)


def segment_poses(pose: np.ndarray, end: np.ndarray, frames: int, scene=None, clearance: float = CLEARANCE_M) -> tuple:
    """Per-frame target poses from ``pose`` to ``end``, stopped at walls when the scene is known.

    The camera moves on a straight line and turns linearly (geometry.interpolate_poses). With a
    scene, each frame's move must keep ``clearance`` metres from walls (``scene.segment_free``);
    at the first blocked frame the camera stops where it is and only keeps turning.

    Returns:
        ``(poses (T, 3), collided)`` with yaw wrapped to [-pi, pi).
    """
    poses = interpolate_poses(pose, end, frames)                      # (T, 3)
    collided = False
    if scene is not None and np.any(np.abs(end[:2] - pose[:2]) > 1e-12):
        prev = np.asarray(pose[:2], np.float64)
        for t in range(frames):
            if collided or not scene.segment_free(prev, poses[t, :2], clearance):
                collided = True
                poses[t, :2] = prev
            else:
                prev = poses[t, :2].copy()
    poses[:, 2] = wrap_angle(poses[:, 2])
    return poses, collided


# ---------------------------------------------------------------- 6-DoF pose actions


def pose6_extrinsics(action) -> np.ndarray:
    """Validate a 6-DoF "pose" action ``(x, y, z, yaw, pitch, roll)`` -> its camera-to-world [R|t] (3, 4)."""
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"a 6-DoF pose action must be 6 numbers {POSE6_FIELDS}, got {action!r}") from e
    if a.shape != (6,):
        hint = (" (this world takes 6-DoF targets: append z = 1.6, pitch = 0, roll = 0 to an (x, y, yaw) pose)"
                if a.shape == (3,) else "")
        raise ValueError(f"a 6-DoF pose action must have shape (6,) = {POSE6_FIELDS}, an absolute target camera, "
                         f"got {a.shape}{hint}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"a 6-DoF pose action must be finite, got {a.tolist()}")
    if np.any(np.abs(a[:3]) > POSE_ACTION_LIMIT_M):
        raise ValueError(f"pose action (x, y, z) = {a[:3].tolist()} is outside +-{POSE_ACTION_LIMIT_M:g} m")
    x, y, z, yaw, pitch, roll = a
    return euler_to_extrinsics(x, y, z, yaw, pitch, roll)


def rotation_angle(R0, R1) -> np.ndarray:
    """Angle (radians, [0, pi]) of the rotation taking R0 (..., 3, 3) to R1 (..., 3, 3)."""
    c = (np.einsum("...ij,...ij->...", R0, R1) - 1.0) / 2.0      # trace(R0^T R1) = sum of elementwise products
    return np.arccos(np.clip(c, -1.0, 1.0))


def _quaternion(R: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> unit quaternion (w, x, y, z), from its largest diagonal term (stable)."""
    t = np.trace(R)
    if t > 0:
        w = np.sqrt(1.0 + t) * 2
        q = [0.25 * w, (R[2, 1] - R[1, 2]) / w, (R[0, 2] - R[2, 0]) / w, (R[1, 0] - R[0, 1]) / w]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        d = np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k]) * 2
        q = np.zeros(4)
        q[0], q[1 + i] = (R[k, j] - R[j, k]) / d, 0.25 * d
        q[1 + j], q[1 + k] = (R[j, i] + R[i, j]) / d, (R[k, i] + R[i, k]) / d
    q = np.asarray(q, np.float64)
    return q / np.linalg.norm(q)


def _rotation(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) as (w, x, y, z) -> rotation matrices (..., 3, 3)."""
    w, x, y, z = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    return np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
                     np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
                     np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def slerp(R0, R1, s) -> np.ndarray:
    """Rotations along the shortest arc from R0 (3, 3) to R1 (3, 3) at fractions s (n,) -> (n, 3, 3):
    constant angular speed, s = 0 is R0 and s = 1 is R1 (up to rounding)."""
    q0, q1 = _quaternion(np.asarray(R0, np.float64)), _quaternion(np.asarray(R1, np.float64))
    dot = float(q0 @ q1)
    if dot < 0:                          # q and -q are the same rotation: take the shorter way round
        q1, dot = -q1, -dot
    s = np.asarray(s, np.float64).reshape(-1, 1)
    theta = np.arccos(min(dot, 1.0))
    if theta < 1e-9:
        q = (1 - s) * q0 + s * q1
    else:
        q = (np.sin((1 - s) * theta) * q0 + np.sin(s * theta) * q1) / np.sin(theta)
    return _rotation(q)


def approach_extrinsics(current, target, bounds: ActionBounds) -> tuple:
    """Move a camera (3, 4) toward a target camera (3, 4) by at most one step's travel (3D distance)
    and turn (rotation angle). -> (end (3, 4), clipped)."""
    E0, E1 = np.asarray(current, np.float64), np.asarray(target, np.float64)
    d = E1[:, 3] - E0[:, 3]
    dist = float(np.linalg.norm(d))
    angle = float(rotation_angle(E0[:, :3], E1[:, :3]))
    max_turn = np.deg2rad(bounds.max_turn_deg)
    clipped = dist > bounds.max_move + 1e-9 or angle > max_turn + 1e-9
    end = E1.copy()
    if dist > bounds.max_move:
        end[:, 3] = E0[:, 3] + d * (bounds.max_move / dist)
    if angle > max_turn:
        end[:, :3] = slerp(E0[:, :3], E1[:, :3], [max_turn / angle])[0]
    return end, bool(clipped)


def end_extrinsics(action, current, bounds: ActionBounds) -> tuple:
    """The camera a 6-DoF "pose" action heads for by the end of the segment. -> (end (3, 4), clipped)."""
    return approach_extrinsics(as_extrinsics(current, "current camera"), pose6_extrinsics(action), bounds)


def interpolate_extrinsics(start, end, n: int) -> np.ndarray:
    """n cameras (n, 3, 4) after ``start`` (3, 4), ending exactly at ``end`` (3, 4): centres on the
    straight line, rotations by slerp, both at fractions 1/n, 2/n, ..., 1."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    E0, E1 = as_extrinsics(start, "start"), as_extrinsics(end, "end")
    s = np.arange(1, n + 1) / n
    out = np.empty((n, 3, 4))
    out[:, :, :3] = slerp(E0[:, :3], E1[:, :3], s)
    out[:, :, 3] = E0[:, 3] + s[:, None] * (E1[:, 3] - E0[:, 3])
    out[-1] = E1                                          # exact end point
    return out


def segment_extrinsics(current, end, frames: int, scene=None, clearance: float = CLEARANCE_M) -> tuple:
    """Per-frame target cameras (T, 3, 4) from ``current`` to ``end`` (``interpolate_extrinsics``),
    stopped at walls when the scene is known: a frame whose ground move (x, y) would come closer than
    ``clearance`` to a wall stops the camera where it is (height included); it keeps turning.
    -> ``(cameras (T, 3, 4), collided)``."""
    E0 = as_extrinsics(current, "current camera")
    cams = interpolate_extrinsics(E0, end, frames)
    collided = False
    if scene is not None and np.any(np.abs(cams[-1, :2, 3] - E0[:2, 3]) > 1e-12):
        prev = E0[:, 3].copy()
        for t in range(frames):
            if collided or not scene.segment_free(prev[:2], cams[t, :2, 3], clearance):
                collided = True
                cams[t, :, 3] = prev
            else:
                prev = cams[t, :, 3].copy()
    return cams, collided


def action_table_markdown(bounds: ActionBounds) -> str:
    """The discrete action table with the step sizes of ``bounds`` (for docs and ``--help``)."""
    rows = ["| Num | Name | Action |", "|---|---|---|"]
    for i, (name, f, s, y) in enumerate(DISCRETE_ACTIONS):
        if f:
            what = f"move {'forward' if f > 0 else 'backward'} {bounds.discrete_move:.2f} m"
        elif s:
            what = f"move {'left' if s > 0 else 'right'} {bounds.discrete_move:.2f} m without turning"
        elif y:
            what = f"turn {'left' if y > 0 else 'right'} {bounds.discrete_turn_deg:.1f} degrees"
        else:
            what = "stay (the world still generates the segment)"
        rows.append(f"| {i} | {name} | {what} |")
    return "\n".join(rows)
