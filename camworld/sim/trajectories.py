"""Camera trajectories in a scene: smoothed random walks under the paper's limits, and every scripted
return-to-start path kind (turn in place, turn away and back, walk a line and back, walk away and
return, loops). Training, tasks and benchmarks build their probes here.

All return float64 (N, 3) planar poses ``(x, y, yaw)`` in metres and radians. Yaw is continuous
(unwrapped), so ``np.diff(poses[:, 2])`` is the turn per frame. Positions keep ``clearance`` metres
from every solid cell (``Scene.is_free``).

Paper limits (Context-as-Memory §4.1): per 77 frames at 30 fps, 3-6 m of travel and under 60 degrees
of yaw. ``random_trajectory`` holds them by construction: a speed in [1.24, 2.19] m/s and a yaw rate
under 58.2 degrees per 77/30 s.
"""

from __future__ import annotations

import numpy as np

from camworld import geometry
from camworld.sim.scene import DEFAULT_CLEARANCE, Scene

SEGMENT_FRAMES = 77                     # the paper's segment length
MAX_YAW_PER_SEGMENT = np.deg2rad(60.0)  # paper limit per 77 frames at 30 fps
_YAW_RATE = 0.97 * MAX_YAW_PER_SEGMENT / (SEGMENT_FRAMES / 30.0)   # rad/s, strictly under the limit
# base walking speed (m/s) and its slow modulation: indoors slower, for a tighter turning radius;
# both keep 77 frames at 30 fps within 3.19-5.6 m of travel
_SPEED = {True: ((1.35, 1.55), 0.08), False: ((1.45, 1.9), 0.15)}
_MARGINS = (0.25, 0.05)                 # extra clearance when planning straight legs (tried in order)
_LOOKAHEAD_S = 2.0                       # the yaw aims at the walking direction this far ahead
_PROBE = 0.2                            # metres between free-space probes along a candidate leg


def _check_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _check_pose(pose, name="pose") -> np.ndarray:
    p = np.asarray(pose, np.float64)
    if p.shape != (3,) or not np.isfinite(p).all():
        got = p.tolist() if p.size < 10 else p.shape
        raise ValueError(f"{name} must be a finite (3,) planar pose (x, y, yaw), got {got}")
    return p


def _check_start(scene: Scene, start, clearance) -> np.ndarray:
    p = _check_pose(start, "start")
    if not scene.is_free(p[:2], clearance):
        raise ValueError(f"start {p[:2].tolist()} is not free in scene seed={scene.seed} style={scene.style!r} "
                         f"(within {clearance} m of a wall or outside); use scene.sample_free_pose(rng)")
    return p


def _free_runs(scene: Scene, p, angles, max_len: float, clearance: float) -> np.ndarray:
    """Free straight-line distance (metres, up to ``max_len``) from ``p`` (2,) along each angle (A,)."""
    steps = np.arange(1, int(max_len / _PROBE) + 1) * _PROBE                     # (S,)
    d = np.stack([np.cos(angles), np.sin(angles)], -1)                           # (A, 2)
    pts = p[None, None] + steps[None, :, None] * d[:, None]                      # (A, S, 2)
    ok = scene.is_free(pts, clearance)                                           # (A, S)
    first_bad = np.where(ok.all(1), len(steps), np.argmin(ok, 1))
    return np.where(first_bad > 0, steps[np.maximum(first_bad - 1, 0)], 0.0)


def _next_waypoint(scene, p, heading, rng, clearance):
    """Pick the next straight leg: mostly ahead, sometimes sideways, turning back only when boxed in."""
    angles = heading + np.linspace(-np.pi, np.pi, 16, endpoint=False) + rng.uniform(-0.1, 0.1)
    for margin in _MARGINS:
        runs = _free_runs(scene, p, angles, 8.0, clearance + margin)
        if runs.max() >= 1.0 or margin == _MARGINS[-1]:
            break
    turn = np.abs(geometry.wrap_angle(angles - heading))
    usable = runs - 1.0  # stop a metre short of what is ahead, so there is room to turn gently
    score = np.minimum(usable, 6.0) ** 2 * np.exp(-turn / 0.4) * (usable >= 1.0)
    if score.sum() <= 0:  # cramped: accept short legs, possibly back the way we came
        usable = 0.9 * runs
        score = usable ** 2 * np.exp(-turn / 1.0) * (usable >= 0.2)
    if score.sum() <= 0:  # no way out at all: stay (the caller turns the search around)
        return p.copy(), heading, margin
    k = int(rng.choice(len(angles), p=score / score.sum()))
    length = min(usable[k], rng.uniform(1.5, 4.0))
    a = angles[k]
    return p + length * np.array([np.cos(a), np.sin(a)]), a, margin


def _resample(curve: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Points at arc lengths ``s`` (F,) along a polyline ``curve`` (M, 2)."""
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    return np.stack([np.interp(s, cum, curve[:, 0]), np.interp(s, cum, curve[:, 1])], -1)


def _densify(pts: np.ndarray, spacing: float) -> np.ndarray:
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / spacing)))
        out.append(a + (np.arange(1, n + 1) / n)[:, None] * (b - a))
    return np.concatenate(out)


def random_trajectory(scene: Scene, n_frames: int, rng: np.random.Generator, start=None, fps: float = 30,
                      clearance: float = DEFAULT_CLEARANCE) -> np.ndarray:
    """A smoothed random walk: a random free polyline, smoothed with ``geometry.bspline``, walked at
    1.24-2.19 m/s (slower indoors); yaw follows the walking direction with a slow look-around, rate-limited.

    Holds the paper's limits over every window of 77 frames at 30 fps: 3-6 m of travel (path
    length) and under 60 degrees of total yaw change. In cramped places it turns back or re-plans;
    it never fails and never leaves free space (clearance ``clearance`` m).

    Args:
        scene: the scene.
        n_frames: number of poses F >= 1.
        rng: randomness (same state, same trajectory).
        start: (3,) first pose (must be free); None samples one with ``scene.sample_free_pose`` and
            turns it to face, preferably, open space.
        fps: frames per second (the limits are physical: speeds in m/s, turn rates in rad/s).
        clearance: metres to keep from walls.
    Returns:
        float64 (F, 3) poses; the first is ``start``.
    """
    F = _check_int("n_frames", n_frames)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be > 0, got {fps!r}")
    if start is None:  # a random free spot, facing (mostly) into open space rather than at a wall
        p0 = scene.sample_free_pose(rng)
        angles = p0[2] + np.linspace(0, 2 * np.pi, 16, endpoint=False)
        runs = _free_runs(scene, p0[:2], angles, 8.0, clearance)
        if runs.max() > 0:
            p0[2] = geometry.wrap_angle(angles[rng.choice(16, p=runs**2 / (runs**2).sum())])
    else:
        p0 = _check_start(scene, start, clearance)
    t = np.arange(F) / fps
    (vlo, vhi), mod = _SPEED[scene.indoor]
    v = rng.uniform(vlo, vhi) * (1.0 + mod * np.sin(2 * np.pi * t / rng.uniform(6, 12) + rng.uniform(0, 2 * np.pi)))
    s = np.concatenate([[0.0], np.cumsum(v[1:] / fps)])                          # (F,) arc length
    # ---- plan a free polyline a bit longer than needed (the spline cuts corners)
    pts, heading, legs_margin = [p0[:2].copy()], float(p0[2]), []
    length, stuck = 0.0, 0
    while length < 1.3 * s[-1] + 2.0:
        q, heading, m = _next_waypoint(scene, pts[-1], heading, rng, clearance)
        step = float(np.linalg.norm(q - pts[-1]))
        if step < 1e-6:
            stuck += 1
            heading += np.pi / 2
            if stuck > 8:
                break
            continue
        pts.append(q)
        legs_margin.append(m)
        length += step
    pts = np.asarray(pts)
    if len(pts) < 2:  # nowhere to go: a free pose in a pocket; stand still and look around
        xy = np.repeat(p0[None, :2], F, 0)
    else:
        dense = _densify(pts, 0.75)
        curve = geometry.bspline(dense, 6 * len(dense))
        seg = np.linalg.norm(np.diff(curve, axis=0), axis=1).sum()
        xy = _resample(curve, s) if seg >= s[-1] else None
        if xy is None or not scene.is_free(xy, clearance).all():
            # the straight legs themselves were checked with extra clearance
            xy = _resample(_densify(pts, 0.1), s)
        xy[0] = p0[:2]
    # ---- yaw: walking direction plus a slow look-around, rate-limited
    # aim where the walk will be ~2 s ahead, so the rate-limited turn starts before a corner
    k = max(1, int(round(_LOOKAHEAD_S * fps)))
    ahead = xy[np.minimum(np.arange(F) + k, F - 1)] - xy
    moving = np.linalg.norm(ahead, axis=1) > 1e-6
    walk = np.where(moving, np.arctan2(ahead[:, 1], ahead[:, 0]), p0[2])
    look = np.deg2rad(20.0) * np.sin(2 * np.pi * t / rng.uniform(5, 10) + rng.uniform(0, 2 * np.pi))
    target = walk + look
    max_step = _YAW_RATE / fps
    yaw = np.empty(F)
    yaw[0] = p0[2]
    for i in range(1, F):
        yaw[i] = yaw[i - 1] + np.clip(geometry.wrap_angle(target[i] - yaw[i - 1]), -max_step, max_step)
    out = np.concatenate([xy, yaw[:, None]], 1)
    out[0] = p0
    return out


def turn_in_place(pose, theta: float, deg_per_frame: float = 10.0, min_frames: int = 1) -> np.ndarray:
    """Turn in place from ``pose`` by ``theta`` radians (positive = left) at about ``deg_per_frame``.

    Returns float64 (n, 3), the start excluded, n = max(min_frames, round(|theta| / deg_per_frame));
    the yaw moves linearly and ends turned by exactly theta. Yaw is not wrapped, so a 180-degree
    turn never flips to the short way round.
    """
    p = _check_pose(pose)
    if not (np.isfinite(theta) and deg_per_frame > 0):
        raise ValueError(f"theta must be finite and deg_per_frame > 0, got {theta!r}, {deg_per_frame!r}")
    n = max(int(min_frames), int(round(abs(np.rad2deg(theta)) / deg_per_frame)))
    out = np.repeat(p[None], n, 0)
    out[:, 2] = p[2] + theta * np.arange(1, n + 1) / n
    return out


def there_and_back(path: np.ndarray) -> np.ndarray:
    """(n + 1, 3) outward path, start first -> (2n + 1, 3) palindrome that retraces it: frame j has
    the pose of frame L - 1 - j, so the last pose is the first exactly."""
    return np.concatenate([path, path[-2::-1]], 0)


def rotate_away_and_back(pose, theta_deg: float, n_frames_each: int) -> np.ndarray:
    """Turn in place by ``theta_deg`` (positive = left) over ``n_frames_each`` frames, then back.

    Returns float64 (2 * n_frames_each + 1, 3); the middle pose is turned by theta, the last pose
    equals the first exactly. Eased (cosine) so the turn starts and stops smoothly.
    """
    p = _check_pose(pose)
    n = _check_int("n_frames_each", n_frames_each)
    if not np.isfinite(theta_deg):
        raise ValueError(f"theta_deg must be finite, got {theta_deg!r}")
    ease = 0.5 - 0.5 * np.cos(np.pi * np.arange(n + 1) / n)                   # (n+1,) 0 -> 1
    out = np.repeat(p[None], n + 1, 0)
    out[:, 2] = p[2] + ease * np.deg2rad(theta_deg)
    return there_and_back(out)


def turn_and_back(pose, theta: float, deg_per_frame: float) -> np.ndarray:
    """Turn in place by ``theta`` radians (positive = left; not wrapped, so 180 degrees turns one way) at
    a constant rate of at most ``deg_per_frame``, then retrace. Returns float64 (2n + 1, 3) with
    n = ceil(|theta| / deg_per_frame) >= 1 (``there_and_back``)."""
    p = _check_pose(pose)
    if not (np.isfinite(theta) and deg_per_frame > 0):
        raise ValueError(f"theta must be finite and deg_per_frame > 0, got {theta!r}, {deg_per_frame!r}")
    n = max(1, int(np.ceil(abs(np.rad2deg(theta)) / deg_per_frame - 1e-9)))
    out = np.repeat(p[None], n + 1, 0)
    out[:, 2] = p[2] + np.linspace(0.0, theta, n + 1)
    return there_and_back(out)


def walk_and_back(scene: Scene, pose, metres: float, frames: int, backwards: bool = True):
    """Walk ``metres`` in a straight line over ``frames`` frames, yaw fixed (``backwards``: the camera
    keeps facing the start), then retrace. Returns float64 (2 * frames + 1, 3) (``there_and_back``),
    or None when the line is not free (``scene.segment_free``)."""
    p = _check_pose(pose)
    frames = _check_int("frames", frames)
    d = (-1.0 if backwards else 1.0) * np.array([np.cos(p[2]), np.sin(p[2])])
    end = p[:2] + metres * d
    if not scene.segment_free(p[:2], end):
        return None
    out = np.repeat(p[None], frames + 1, 0)
    out[:, :2] = p[:2] + np.linspace(0.0, 1.0, frames + 1)[:, None] * (end - p[:2])
    return there_and_back(out)


def _lerp(a, b, n):
    """n poses from a to b (excluding a, ending at b), linear in x, y and *unwrapped* yaw."""
    s = (np.arange(1, n + 1) / n)[:, None]
    return a[None] + s * (b - a)[None]


def _split(n: int, weights) -> list:
    """Split n frames over phases proportionally to ``weights`` (each >= 1 where its weight > 0)."""
    w = np.asarray(weights, float)
    k = np.where(w > 0, np.maximum(1, np.floor(n * w / w.sum())), 0).astype(int)
    while k.sum() > n:
        k[int(np.argmax(k))] -= 1
    k[int(np.argmax(w))] += n - k.sum()
    return k.tolist()


def walk_away_and_return(scene: Scene, pose, distance: float = 3.0, n_frames_each: int = 60, rng=None,
                         clearance: float = DEFAULT_CLEARANCE) -> np.ndarray:
    """Walk about ``distance`` metres in a free direction, turn around, walk back, face the start yaw.

    The direction is the camera's forward one when it is free for ``distance`` metres, else the
    free direction closest to it (ties broken by ``rng``); if nothing is free that far, it walks as
    far as it can. The outward leg (turn + walk) and the return leg (turn around + walk + final
    turn) take ``n_frames_each`` frames each.

    Returns:
        float64 (2 * n_frames_each + 1, 3); the last pose equals the first exactly, and the yaw path
        has zero net rotation.
    """
    p = _check_start(scene, pose, clearance)
    n = _check_int("n_frames_each", n_frames_each, 2)
    if not (np.isfinite(distance) and distance > 0):
        raise ValueError(f"distance must be > 0 metres, got {distance!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    offsets = np.deg2rad(np.array([0, 30, -30, 60, -60, 90, -90, 120, -120, 150, -150, 180], float))
    offsets = offsets + rng.uniform(-0.05, 0.05, len(offsets))
    angles = p[2] + offsets
    runs = _free_runs(scene, p[:2], angles, distance + 0.01, clearance + 0.05)
    ok = np.flatnonzero(runs >= distance)
    k = int(ok[0]) if len(ok) else int(np.argmax(runs))
    dist = distance if len(ok) else 0.95 * runs[k]
    a1 = float(geometry.wrap_angle(offsets[k]))
    far = np.array([p[0] + dist * np.cos(p[2] + a1), p[1] + dist * np.sin(p[2] + a1), p[2] + a1])
    back = -np.pi if a1 >= 0 else np.pi                                  # net rotation ends at zero
    a3 = -(a1 + back)
    n1t, n1w = _split(n, [abs(a1), dist])
    n2t, n2w, n3t = _split(n, [np.pi, dist, abs(a3)])
    p1 = np.array([p[0], p[1], p[2] + a1])
    p2 = far + np.array([0.0, 0.0, back])
    p3 = np.array([p[0], p[1], p2[2]])
    parts = [p[None]]
    for a, b, m in ((p, p1, n1t), (p1, far, n1w), (far, p2, n2t), (p2, p3, n2w), (p3, p, n3t)):
        if m > 0:
            parts.append(_lerp(a, b, m))
    out = np.concatenate(parts)
    out[-1] = p
    return out


def loop_trajectory(scene: Scene, pose, n_frames: int, radius: float = 2.0, rng=None,
                    clearance: float = DEFAULT_CLEARANCE) -> np.ndarray:
    """A closed circular loop through ``pose``, tangent to its heading, camera facing along the loop.

    Tries the circle on the left or right (order by ``rng``) at ``radius``, then smaller radii until
    one is free; if none is, it turns a full circle in place.

    Returns:
        float64 (n_frames, 3); the last pose is the first pose exactly (its yaw after the full turn
        is equal modulo 2 pi; the stored value is the start's).
    """
    p = _check_start(scene, pose, clearance)
    F = _check_int("n_frames", n_frames, 2)
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be > 0 metres, got {radius!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    sides = [1.0, -1.0] if rng.random() < 0.5 else [-1.0, 1.0]
    phi = 2 * np.pi * np.arange(F) / (F - 1)                                  # (F,)
    left = np.array([-np.sin(p[2]), np.cos(p[2])])
    for r in radius * np.array([1.0, 0.75, 0.5, 0.35, 0.25]):
        for sd in sides:
            c = p[:2] + sd * r * left
            ang0 = np.arctan2(p[1] - c[1], p[0] - c[0])
            xy = c + r * np.stack([np.cos(ang0 + sd * phi), np.sin(ang0 + sd * phi)], -1)
            probe = c + r * np.stack([np.cos(ang0 + np.linspace(0, 2 * np.pi, 96)),
                                      np.sin(ang0 + np.linspace(0, 2 * np.pi, 96))], -1)
            if scene.is_free(xy, clearance).all() and scene.is_free(probe, clearance).all():
                out = np.concatenate([xy, (p[2] + sd * phi)[:, None]], 1)
                out[0] = out[-1] = p
                return out
    out = np.repeat(p[None], F, 0)
    out[:, 2] = p[2] + phi
    out[-1] = p
    return out


def square_loop(scene: Scene, start, side: float, deg_per_frame: float, m_per_frame: float, left: bool = True):
    """A square loop (``side`` metres a side, turning 90 degrees left or right at each corner, at most
    ``deg_per_frame`` / ``m_per_frame`` a frame) that ends at the start pose, then walks its first side
    again. -> (poses (L, 3), revisit pairs (n, 2) of (frame on the second pass, same pose on the first)),
    or None where a side is blocked."""
    sign = 1 if left else -1
    n_leg = max(1, int(round(side / m_per_frame)))
    n_turn = max(1, int(round(90.0 / deg_per_frame)))
    path, p = [np.asarray(start, np.float64)], np.asarray(start, np.float64)
    first_leg = None
    for leg in range(5):
        end = p + np.array([side * np.cos(p[2]), side * np.sin(p[2]), 0.0])
        if not scene.segment_free(p[:2], end[:2]):
            return None
        seg = geometry.interpolate_poses(p, end, n_leg)
        if leg == 0:
            first_leg = np.arange(1, n_leg + 1)
        path.append(seg)
        p = seg[-1]
        if leg == 4:
            break
        turn = np.repeat(p[None], n_turn, 0)
        turn[:, 2] = p[2] + sign * np.deg2rad(90.0) * np.arange(1, n_turn + 1) / n_turn
        path.append(turn)
        p = turn[-1]
    poses = np.concatenate([np.asarray(x).reshape(-1, 3) for x in path])
    L = len(poses)
    again = np.arange(L - n_leg, L)
    return poses, np.stack([again, first_leg], 1)
