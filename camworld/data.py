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
from camworld.sim.excursions import excursion  # noqa: F401  (camworld.data.excursion, as before)
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

    @classmethod
    def empty(cls, B: int, Fc: int, Ft: int, frame_size: int) -> "Batch":
        S = frame_size
        return cls(np.zeros((B, Fc, S, S, 3), np.uint8), np.zeros((B, Fc), bool), np.zeros((B, Fc, 3, 4), np.float32),
                   np.zeros((B, Ft, S, S, 3), np.uint8), np.zeros((B, Ft, 3, 4), np.float32), [], np.zeros(B, bool))

    def put(self, b: int, frames: np.ndarray, ext: np.ndarray, n: int):
        """Sample b: ``frames`` uint8 (n + Ft, H, W, 3) and ``ext`` (n + Ft, 3, 4), its n context frames
        (oldest first) then its targets; the context is right-aligned, padding repeats the newest camera."""
        Fc = self.ctx_mask.shape[1]
        self.ctx_frames[b, Fc - n:] = frames[:n]
        self.ctx_mask[b, Fc - n:] = True
        self.ctx_ext[b, Fc - n:] = ext[:n]
        self.ctx_ext[b, : Fc - n] = ext[n - 1]
        self.tgt_frames[b], self.tgt_ext[b] = frames[n:], ext[n:]


def batch_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, step, rank])


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

    def pick(mem, times, tgt, k):
        return retrieve(strategy or cfg.retrieval, poses[mem], times, poses[tgt], k, rng)

    tgt, ctx = segment_context(L, s, rng, cfg, k, pick)
    return poses, tgt, ctx, revisit_from is not None


def segment_context(L: int, s: int, rng, cfg, k: int, pick):
    """Algorithm 1 line 3 for a target segment starting at frame ``s`` of an L-frame trajectory: the newest
    context frame (just before the segment, or before a gap), then k - 1 more retrieved from every other
    frame by ``pick(mem (M,), times (M,), tgt (Ft,), k) -> indices into mem`` (a ``retrieve`` call over
    the trajectory's poses). -> (target idx (Ft,), context idx (<= k,) oldest..newest)."""
    Ft = cfg.target_frames
    # A gap between the newest context frame and the targets stands in for the later frames of a long
    # segment (the paper generates 77 frames from one context): the newest frame then shows little of
    # the target, and the model must copy from the retrieved memory instead (measured: without gaps it
    # learns to continue the newest frame and ignores the rest of the context).
    gap = int(rng.integers(1, cfg.max_gap + 1)) if rng.random() < cfg.gap_prob and s > cfg.max_gap else 0
    tgt = np.arange(s, s + Ft)
    newest = s - 1 - gap
    if rng.random() < cfg.recent_only_prob or k == 1:
        return tgt, np.array([newest])
    # memory = every frame but the segment (gap included); future frames count as older than the past ones
    mem = np.setdiff1d(np.arange(L), np.arange(newest + 1, s + Ft))
    times = np.where(mem <= newest, mem, mem - 2 * L).astype(np.float64)
    picked = pick(mem, times, tgt, k)
    ctx = mem[picked]
    ctx = ctx[np.argsort(times[picked])]  # oldest .. newest, newest = s - 1
    assert ctx[-1] == newest
    return tgt, ctx


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
    batch = Batch.empty(B, Fc, Ft, frame_size)
    for b in range(B):
        if heldout:
            scene, track = make_scene(int(EVAL_SEED_OFFSET + rng.integers(0, EVAL_SEED_OFFSET))), None
        else:
            scene, track = scene_track(int(rng.integers(0, train_cfg.scenes)), train_cfg.frame_stride)
        strategy = train_cfg.retrieval if heldout else str(rng.choice(names, p=probs))
        poses, tgt, ctx, batch.revisit[b] = make_sample(scene, rng, train_cfg, k=Fc, strategy=strategy, track=track)
        need = np.concatenate([ctx, tgt])
        rgb, _ = render(scene, poses[need], frame_size, frame_size)
        batch.put(b, rgb, planar_to_extrinsics(poses[need]).astype(np.float32), len(ctx))
        batch.prompts.append(scene_caption(scene, rng))
    return batch


def vae_batch(rng: np.random.Generator, batch_size: int, frame_size: int, heldout: bool = False, per_scene: int = 8):
    """uint8 (B, H, W, 3) frames from random scenes at random free poses (any yaw)."""
    out = []
    offset = EVAL_SEED_OFFSET if heldout else 0
    while sum(len(o) for o in out) < batch_size:
        scene = make_scene(int(offset + rng.integers(0, EVAL_SEED_OFFSET)))
        poses = np.stack([scene.sample_free_pose(rng) for _ in range(per_scene)])
        out.append(render(scene, poses, frame_size, frame_size)[0])
    return np.concatenate(out)[:batch_size]
