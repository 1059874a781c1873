"""The Gymnasium side of the actions: their spaces. The motion itself (bounds, action -> poses,
walls) lives in the core, ``camworld.motion``, and is re-exported here."""

from __future__ import annotations

import numpy as np

from camworld.motion import (ACTION_TYPES, CLEARANCE_M, DEFAULT_FRAME_STRIDE, DISCRETE_ACTIONS, DISCRETE_NAMES,  # noqa: F401
                             MOVE_PER_FRAME_M, PAPER_FRAMES, PAPER_MAX_TRAVEL_M, PAPER_MAX_YAW_DEG,
                             POSE6_FIELDS, POSE_ACTION_LIMIT_M, SIM_FPS, TURN_PER_FRAME_DEG, ActionBounds,
                             action_table_markdown, approach, discrete_index, discrete_subset, end_extrinsics, end_pose,
                             segment_extrinsics, segment_poses)


def action_space(action_type: str, bounds: ActionBounds, six_dof: bool = False, discrete_names=DISCRETE_NAMES):
    """The Gymnasium action space of an action type; ``six_dof``: "pose" actions are 6-DoF targets
    ``(x, y, z, yaw, pitch, roll)`` (a world trained on 6-DoF cameras); ``discrete_names``: the discrete actions
    (a reduced set: ``discrete_actions=``)."""
    from gymnasium import spaces

    if action_type == "discrete":
        return spaces.Discrete(len(discrete_names))
    if action_type == "continuous":
        hi = np.array([bounds.max_move, bounds.max_move, bounds.max_turn_deg], np.float32)
        return spaces.Box(-hi, hi, dtype=np.float32)
    if action_type == "pose" and six_dof:
        L = POSE_ACTION_LIMIT_M
        hi = np.array([L, L, L, np.pi, np.pi / 2, np.pi], np.float32)
        return spaces.Box(-hi, hi, dtype=np.float32)
    if action_type == "pose":
        hi = np.array([POSE_ACTION_LIMIT_M, POSE_ACTION_LIMIT_M, np.pi], np.float32)
        return spaces.Box(-hi, hi, dtype=np.float32)
    raise ValueError(f"action_type must be one of {ACTION_TYPES}, got {action_type!r}")
