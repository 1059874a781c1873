"""On-the-fly training samples from the ground-truth world (paper Algorithm 1, lines 2-4).

Nothing is stored on disk: each sample picks a training scene and a long trajectory, a target
segment in it, retrieves k-1 context frames from the rest of the trajectory, adds the frame just
before the segment, and renders only the frames it needs. Randomness comes from one
``np.random.Generator`` per batch, derived from (data seed, step, rank), so a resumed run sees the
very same data stream.

Letters: B batch, Fc context frames, Ft target frames, H/W frame size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from camworld.geometry import planar_to_extrinsics
from camworld.sim.render import render
from camworld.sim.trajectories import turn_and_back, walk_and_back
from camworld.sim.worldgen import EVAL_SEED_OFFSET, make_scene


@dataclass
class Batch:
    ctx_frames: np.ndarray    # uint8 (B, Fc, H, W, 3), right-aligned (newest last), zeros where padded
    ctx_mask: np.ndarray      # bool (B, Fc)
    ctx_ext: np.ndarray       # float32 (B, Fc, 3, 4) camera-to-world (padding repeats the newest)
    tgt_frames: np.ndarray    # uint8 (B, Ft, H, W, 3)
    tgt_ext: np.ndarray       # float32 (B, Ft, 3, 4)
    prompts: list             # B captions
    revisit: np.ndarray       # bool (B,) the segment revisits earlier poses (return half of an excursion)


def batch_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, step, rank])


def excursion(scene, start, rng, deg_per_frame=(4.0, 15.0), max_m_per_frame: float = 1.0):
    """A scripted revisit at model frame rate: turn away and back (at ``deg_per_frame``, a (lo, hi)
    range), or walk a line and back (forwards or backwards, at most ``max_m_per_frame``): the path kinds
    ``turn_and_back`` and ``walk_and_back`` of ``camworld.sim.trajectories``.
    Returns (poses (L, 3) palindrome, index where the return half starts)."""
    if rng.random() < 0.6:
        theta = np.deg2rad(rng.uniform(20.0, 180.0)) * (1 if rng.random() < 0.5 else -1)
        poses = turn_and_back(start, theta, float(rng.uniform(*deg_per_frame)))
        return poses, len(poses) // 2 + 1
    for _ in range(4):
        metres, frames = float(rng.uniform(1.0, 3.5)), int(rng.integers(5, 15))
        frames = max(frames, int(np.ceil(metres / max_m_per_frame)))
        poses = walk_and_back(scene, start, metres, frames, backwards=bool(rng.random() < 0.6))
        if poses is not None:
            return poses, len(poses) // 2 + 1
        start = np.array([start[0], start[1], start[2] + rng.uniform(-np.pi, np.pi)])
    poses = turn_and_back(start, np.pi, float(np.clip(10.0, *deg_per_frame)))
    return poses, len(poses) // 2 + 1


# How often a random agent picks each of the env's discrete actions (camworld.motion.DISCRETE_ACTIONS order:
# noop, forward, backward, turn left, turn right, strafe left, strafe right).
AGENT_ACTION_P = (0.06, 0.34, 0.08, 0.17, 0.17, 0.09, 0.09)


def action_walk(scene, start, n_frames: int, rng, frames_per_step: int = 4, sticky: float = 0.6) -> np.ndarray:
    """Poses (n_frames, 3) of a random agent driving the env by its own rules (``camworld.motion``): one
    action per ``frames_per_step`` frames, repeated with probability ``sticky``; half the steps are the
    discrete action, half the same direction as a continuous action scaled by U(0.3, 1.25) and clipped
    to the per-step bounds. Walls stop the camera, which keeps turning, exactly as in the env."""
    from camworld.motion import DISCRETE_ACTIONS, ActionBounds, end_pose, segment_poses

    bounds = ActionBounds(frames_per_step)
    hi = np.array([bounds.max_move, bounds.max_move, bounds.max_turn_deg])
    unit = np.array([bounds.discrete_move, bounds.discrete_move, bounds.discrete_turn_deg])
    p = np.asarray(start, np.float64).copy()
    out, a = [p[None]], None
    while sum(len(o) for o in out) < n_frames:
        if a is None or rng.random() >= sticky:
            a = int(rng.choice(len(AGENT_ACTION_P), p=AGENT_ACTION_P))
        if rng.random() < 0.5:
            end, _ = end_pose(a, "discrete", p, bounds)
        else:
            vec = np.clip(np.array(DISCRETE_ACTIONS[a][1:], np.float64) * unit * rng.uniform(0.3, 1.25), -hi, hi)
            end, _ = end_pose(vec, "continuous", p, bounds)
        seg, _ = segment_poses(p, end, frames_per_step, scene)
        out.append(seg)
        p = seg[-1]
    return np.concatenate(out)[:n_frames]


TRACK_FRAMES = 2400  # sim frames of the long walk cached per training scene (80 s at 30 fps)


@functools.lru_cache(maxsize=2048)
def scene_track(seed: int, stride: int):
    """A scene and one long random walk through it at model frame rate, built once per process and
    cached: training samples crop windows from it, so scene generation and path planning (tens of ms
    each) are not paid per sample."""
    from camworld.sim.trajectories import random_trajectory

    scene = make_scene(seed)
    track = random_trajectory(scene, TRACK_FRAMES, np.random.default_rng([seed, 1]))[::stride]
    return scene, track


def trajectory_for_sample(scene, rng, cfg, track=None):
    """-> (poses (L, 3) at model frame rate, (lo, hi) range of the excursion's return half, or None)."""
    from camworld.sim.trajectories import random_trajectory

    L = cfg.trajectory_frames
    if cfg.action_walk_prob > 0 and rng.random() < cfg.action_walk_prob:
        start = track[int(rng.integers(0, len(track)))] if track is not None else scene.sample_free_pose(rng)
        base = action_walk(scene, start, L, rng)
    elif track is not None and len(track) > L:
        o = int(rng.integers(0, len(track) - L + 1))
        base = track[o:o + L]
        if rng.random() < 0.5:  # walk the window backwards too
            base = base[::-1].copy()
    else:
        base = random_trajectory(scene, L * cfg.frame_stride, rng)[:: cfg.frame_stride]
    if rng.random() >= cfg.revisit_prob:
        return base, None
    cut = int(rng.integers(cfg.context_frames, L // 2))
    exc, ret = excursion(scene, base[cut], rng, cfg.exc_deg_per_frame, cfg.exc_max_m_per_frame)
    poses = np.concatenate([base[: cut + 1], exc[1:], base[cut + 1:]], 0)
    # the excursion shifts the rest of the walk in time but not in space: continuing is seamless
    return poses, (cut + ret, cut + len(exc))


def make_sample(scene, rng, cfg, k: int | None = None, strategy: str | None = None, track=None):
    """Indices for one sample: (poses (L,3), target idx (Ft,), context idx (<=k,) oldest..newest, revisit)."""
    from camworld.retrieval import retrieve

    poses, revisit_from = trajectory_for_sample(scene, rng, cfg, track)
    L, Ft = len(poses), cfg.target_frames
    k = cfg.context_frames if k is None else k
    if revisit_from is not None:  # target inside the return half of the excursion
        lo, hi = revisit_from
        s = min(int(rng.integers(lo, max(lo + 1, hi - Ft + 1))), L - Ft)
    else:
        s = int(rng.integers(1, L - Ft + 1))
    # A gap between the newest context frame and the targets stands in for the later frames of a long
    # segment (the paper generates 77 frames from one context): the newest frame then shows little of
    # the target, and the model must copy from the retrieved memory instead (measured: without gaps it
    # learns to continue the newest frame and ignores the rest of the context).
    gap = int(rng.integers(1, cfg.max_gap + 1)) if rng.random() < cfg.gap_prob and s > cfg.max_gap else 0
    tgt = np.arange(s, s + Ft)
    newest = s - 1 - gap
    if rng.random() < cfg.recent_only_prob or k == 1:
        return poses, tgt, np.array([newest]), revisit_from is not None
    # memory = every frame but the segment (gap included); future frames count as older than the past ones
    mem = np.setdiff1d(np.arange(L), np.arange(newest + 1, s + Ft))
    times = np.where(mem <= newest, mem, mem - 2 * L).astype(np.float64)
    picked = retrieve(strategy or cfg.retrieval, poses[mem], times, poses[tgt], k, rng)
    ctx = mem[picked]
    ctx = ctx[np.argsort(times[picked])]  # oldest .. newest, newest = s - 1
    assert ctx[-1] == newest
    return poses, tgt, ctx, revisit_from is not None


# Algorithm 1 retrieves with one strategy; a mix teaches the model to use whatever context a user's
# strategy hands it (the benchmark compares strategies on one model). ``coverage`` leads: on a revisit
# it hands over the frames that see the target (often at its very pose), which is what makes the
# copy-from-memory skill appear early (DESIGN §7); fov+nonadj keeps one random frame per run, so
# exact revisits are rare with it alone.
TRAIN_STRATEGIES = (("coverage", 0.45), ("fov+nonadj", 0.3), ("random", 0.1), ("recent", 0.15))


def sample_batch(rng: np.random.Generator, train_cfg, frame_size: int, heldout: bool = False) -> Batch:
    """A training (or held-out) batch of B samples, rendered on the fly. The context size is drawn
    per batch from 2..context_frames (no padding waste); 10% of samples keep only the newest frame."""
    from camworld.sim import scene_caption

    B, Ft = train_cfg.batch_size, train_cfg.target_frames
    Fc = int(rng.integers(min(2, train_cfg.context_frames), train_cfg.context_frames + 1))
    names, probs = zip(*TRAIN_STRATEGIES)
    ctx_frames = np.zeros((B, Fc, frame_size, frame_size, 3), np.uint8)
    ctx_mask = np.zeros((B, Fc), bool)
    ctx_ext = np.zeros((B, Fc, 3, 4), np.float32)
    tgt_frames = np.zeros((B, Ft, frame_size, frame_size, 3), np.uint8)
    tgt_ext = np.zeros((B, Ft, 3, 4), np.float32)
    prompts, revisit = [], np.zeros(B, bool)
    for b in range(B):
        if heldout:
            scene, track = make_scene(int(EVAL_SEED_OFFSET + rng.integers(0, EVAL_SEED_OFFSET))), None
        else:
            scene, track = scene_track(int(rng.integers(0, train_cfg.scenes)), train_cfg.frame_stride)
        strategy = train_cfg.retrieval if heldout else str(rng.choice(names, p=probs))
        poses, tgt, ctx, revisit[b] = make_sample(scene, rng, train_cfg, k=Fc, strategy=strategy, track=track)
        need = np.concatenate([ctx, tgt])
        rgb, _ = render(scene, poses[need], frame_size, frame_size)
        n = len(ctx)
        ext = planar_to_extrinsics(poses[need]).astype(np.float32)
        ctx_frames[b, Fc - n:] = rgb[:n]
        ctx_mask[b, Fc - n:] = True
        ctx_ext[b, Fc - n:] = ext[:n]
        ctx_ext[b, : Fc - n] = ext[n - 1]
        tgt_frames[b], tgt_ext[b] = rgb[n:], ext[n:]
        prompts.append(scene_caption(scene, rng))
    return Batch(ctx_frames, ctx_mask, ctx_ext, tgt_frames, tgt_ext, prompts, revisit)


def vae_batch(rng: np.random.Generator, batch_size: int, frame_size: int, heldout: bool = False, per_scene: int = 8):
    """uint8 (B, H, W, 3) frames from random scenes at random free poses (any yaw)."""
    out = []
    offset = EVAL_SEED_OFFSET if heldout else 0
    while sum(len(o) for o in out) < batch_size:
        scene = make_scene(int(offset + rng.integers(0, EVAL_SEED_OFFSET)))
        poses = np.stack([scene.sample_free_pose(rng) for _ in range(per_scene)])
        out.append(render(scene, poses, frame_size, frame_size)[0])
    return np.concatenate(out)[:batch_size]
