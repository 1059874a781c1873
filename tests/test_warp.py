"""Warp initialisation: the reprojection, the sampler's partial schedule, and the learned world's option."""

import numpy as np
import pytest
import torch

from camworld import sim
from camworld.geometry import planar_to_extrinsics
from camworld.metrics import psnr
from camworld.model import WorldModel, preset
from camworld.model.diffusion import sample, timesteps
from camworld.model.vae import frames_to_tensor, tensor_to_frames
from camworld.model.warp import warp_frames, warp_grid


def test_identity_warp_returns_the_frame():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    e = planar_to_extrinsics(np.array([[0.0, 0.0, 0.3], [1.0, 2.0, -1.0]]))
    out = warp_frames(x, e, e[:, None], 52.67)
    assert out.shape == (2, 1, 3, 16, 16)
    assert torch.allclose(out[:, 0], x, atol=1e-5)


def test_a_pure_rotation_warps_the_same_at_every_assumed_depth_and_translation_does_not():
    src = planar_to_extrinsics(np.array([[0.0, 0.0, 0.0]]))
    turn = planar_to_extrinsics(np.array([[[0.0, 0.0, 0.05]]]))
    walk = planar_to_extrinsics(np.array([[[0.3, 0.0, 0.0]]]))
    assert np.allclose(warp_grid(src, turn, 16, 52.67, 2.0), warp_grid(src, turn, 16, 52.67, 20.0))
    assert not np.allclose(warp_grid(src, walk, 16, 52.67, 2.0), warp_grid(src, walk, 16, 52.67, 20.0))
    # turning left (positive yaw) moves the scene right: the target's centre samples left of the source's
    g = warp_grid(src, turn, 16, 52.67)[0, 0]
    assert g[8, 8, 0] < warp_grid(src, src[:, None], 16, 52.67)[0, 0, 8, 8, 0]


def test_warp_predicts_the_next_sim_frame_better_than_a_copy():
    """At env step sizes (3.1 degrees, 0.31 m per frame) the warped newest frame is closer to the ground
    truth than the newest frame itself (measured on 8 held-out scenes: 26.5 vs 19.1 dB turning,
    24.6 vs 22.2 dB walking)."""
    warp, copy = {"turn": [], "walk": []}, {"turn": [], "walk": []}
    for s in range(4):
        scene = sim.make_scene(100_000 + s, sim.STYLES[s % len(sim.STYLES)])
        p0 = sim.random_trajectory(scene, 2, np.random.default_rng(s))[0]
        for kind, p1 in (("turn", p0 + [0, 0, np.deg2rad(3.1)]),
                         ("walk", p0 + [0.31 * np.cos(p0[2]), 0.31 * np.sin(p0[2]), 0])):
            rgb, _ = sim.render(scene, np.stack([p0, p1]))
            w = warp_frames(frames_to_tensor(rgb[:1]), planar_to_extrinsics(p0[None]),
                            planar_to_extrinsics(p1[None, None]), 52.67, 6.0)
            warp[kind].append(psnr(tensor_to_frames(w[0, 0]), rgb[1]))
            copy[kind].append(psnr(rgb[0], rgb[1]))
    assert np.mean(warp["turn"]) > np.mean(copy["turn"]) + 4.0, (warp, copy)
    assert np.mean(warp["walk"]) > np.mean(copy["walk"]), (warp, copy)


def test_warp_grid_rejects_bad_input():
    e = planar_to_extrinsics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="depth"):
        warp_grid(e, e[:, None], 8, 52.67, depth=0.0)
    with pytest.raises(ValueError, match=r"\(B, T, 3, 4\)"):
        warp_grid(e, e, 8, 52.67)


def test_partial_schedule_is_the_full_schedules_tail():
    full = timesteps(4, 3.0)
    assert torch.allclose(timesteps(4, 3.0, start=1.0), full)
    tail = timesteps(4, 3.0, start=float(full[2]))
    assert torch.allclose(tail, full[2:])                       # starting on a knot skips the steps above it
    mid = timesteps(4, 3.0, start=0.6)
    assert mid[0] == pytest.approx(0.6) and torch.allclose(mid[1:], full[full < 0.6])
    with pytest.raises(ValueError, match="start"):
        timesteps(4, 3.0, start=0.0)


def test_partial_sampling_calls_the_network_fewer_times_and_keeps_a_clean_start():
    calls = []

    def dit(z, t, ext, state, prep=None):
        calls.append(float(t[0]))
        return torch.zeros_like(z)                                # v = 0: the sample stays where it starts

    z0 = torch.randn(1, 2, 4, 4, 4)
    out = sample(dit, z0.shape, None, None, steps=4, shift=3.0, noise=z0, start=0.75)
    assert calls == pytest.approx([0.75, 0.5]) and torch.equal(out, z0)


def _world(warp_start, **kw):
    from camworld.world import World

    torch.manual_seed(0)
    m = WorldModel(preset("tiny"))
    return World(m, device="cpu", warp_start=warp_start, **kw)


def test_world_warp_start_is_deterministic_changes_frames_and_is_validated():
    from camworld import fidelity

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]

    def run(ws):
        w = _world(ws)
        w.reset(0, d.gt[0], d.poses[0], seed=3)
        return w.step(d.poses[None, 1:3])

    a = run(0.75)
    assert a.shape == (1, 2, 32, 32, 3) and np.array_equal(a, run(0.75))
    assert not np.array_equal(a, run(1.0))
    assert _world(None).warp_start == 1.0                       # the checkpoint's default: off
    with pytest.raises(ValueError, match="warp_start"):
        _world(0.0)
    with pytest.raises(ValueError, match="warp_depth"):
        _world(0.5, warp_depth=-1.0)


def test_nearest_source_picks_the_frame_seen_at_the_target_and_else_the_newest():
    from camworld.model.warp import nearest_sources

    ctx = planar_to_extrinsics(np.array([[[5.0, 5.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 2.0], [1.0, 0.0, 2.0]]]))
    mask = np.array([[False, True, True, True]])
    tgt = planar_to_extrinsics(np.array([[[0.05, 0.0, 0.0], [1.0, 0.0, 2.0], [5.0, 5.0, 0.0]]]))
    # a revisit of slot 1; a tie between slots 2 and 3 goes to the newer; the padded slot 0 is never picked
    assert nearest_sources(ctx, mask, tgt).tolist() == [[1, 3, 1]]


def test_world_nearest_warp_source_runs_and_is_validated():
    from camworld import fidelity

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    w = _world(0.5, warp_source="nearest")
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    assert w.step(d.poses[None, 1:3]).shape == (1, 2, 32, 32, 3)
    with pytest.raises(ValueError, match="warp_source"):
        _world(0.5, warp_source="oldest")

