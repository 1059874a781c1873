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



def test_reproject_pastes_observed_pixels_first_then_the_nearest_and_marks_what_no_one_saw():
    from camworld.model.warp import reproject

    S = 16
    frames = torch.stack([torch.full((3, S, S), v) for v in (-0.5, 0.25, 0.75, 0.0)])[None]   # (1, 4, 3, S, S)
    ctx = planar_to_extrinsics(np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.02], [9.0, 9.0, 0.0]]]))
    tgt = planar_to_extrinsics(np.array([[[0.0, 0.0, 0.005], [0.0, 0.0, 0.5]]]))
    mask = np.array([[True, True, True, False]])
    # slot 1 is nearest to target 0 but generated; the observed slot 0 wins wherever it saw
    px, seen = reproject(frames, ctx, mask, np.array([[True, False, False, True]]), tgt, 52.67)
    assert px.shape == (1, 2, 3, S, S) and seen.shape == (1, 2, S, S)
    assert seen[0, 0, :, 1:].all() and torch.allclose(px[0, 0, :, :, 1:], torch.full((3, S, S - 1), -0.5))
    # without an observed frame the nearest camera's pixels are pasted (slots 0 and 1 are one camera: the tie
    # goes to the newer)
    px, _ = reproject(frames, ctx, mask, np.zeros((1, 4), bool), tgt, 52.67)
    assert torch.allclose(px[0, 0, :, :, 1:], torch.full((3, S, S - 1), 0.25))
    # a frame taken from the target camera itself wins over an observed one: a return shows what was shown
    px, _ = reproject(frames, ctx, mask, np.array([[True, False, False, True]]), ctx[:, 1:2], 52.67)
    assert torch.allclose(px[0, 0], torch.full((3, S, S), 0.25))
    # turned 29 degrees left: the left columns were outside every context camera (the padded slot at
    # (9, 9) never counts); what was seen comes from the frames, what was not is marked
    left = seen[0, 1, :, :3]
    assert not left.any() and seen[0, 1, :, -3:].all()
    with pytest.raises(ValueError, match="reproject"):
        reproject(frames, ctx[:, :3], mask, mask, tgt, 52.67)


def test_world_paste_returns_the_remembered_frame_on_a_return_and_is_saved(tmp_path):
    """warp_paste: a target camera where an observed frame was taken shows that frame (to rounding),
    whatever the network draws; without it the network's frame is shown. World files keep the setting."""
    from camworld import fidelity
    from camworld.world_io import load_world, save_world

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    back = np.stack([d.poses[0], d.poses[0]])[None]               # (1, 2, 3): return to the start pose

    def run(paste):
        w = _world(0.5, warp_source="nearest", warp_paste=paste)
        w.reset(0, d.gt[0], d.poses[0], seed=3)
        return w, w.step(back)

    w, a = run(True)
    assert w.warp_paste is True
    assert np.abs(a[0].astype(int) - d.gt[0].astype(int)).max() <= 1
    _, b = run(False)
    assert np.abs(b[0].astype(int) - d.gt[0].astype(int)).max() > 10     # the tiny untrained network's frame
    save_world(w, tmp_path / "w")
    assert load_world(tmp_path / "w", model=w.model)[0].warp_paste is True
    assert _world(0.5).warp_paste is False                              # the tiny preset's default: off
    with pytest.raises(ValueError, match="warp_paste"):
        _world(0.5, warp_paste="yes")


def test_reproject_equals_a_per_pixel_choice_over_every_context_frame():
    """The painter's loop (worst source first) gives, wherever a frame saw the pixel, the pixel of the best
    source that saw it: observed first, then the nearest camera, ties to the newest slot."""
    from camworld.model.warp import OBSERVED_FIRST, camera_distance, reproject

    rng = np.random.default_rng(5)
    B, T, k, S = 3, 2, 5, 16
    ctx = planar_to_extrinsics(rng.normal(size=(B, k, 3)) * 0.3)
    ctx[:, 3] = ctx[:, 2]                                                 # a tie
    tgt = planar_to_extrinsics(rng.normal(size=(B, T, 3)) * 0.3)
    ctx[0, 1] = tgt[0, 0]                                                 # a context frame at a target camera
    frames = torch.rand(B, k, 3, S, S) * 2 - 1
    mask = rng.random((B, k)) > 0.2
    mask[:, -1] = True
    obs = rng.random((B, k)) > 0.6
    px, seen = reproject(frames, ctx, mask, obs, tgt, 52.67)
    dist = camera_distance(ctx[:, None], tgt[:, :, None])
    rank = np.where(dist < 1e-6, -1.0, dist + OBSERVED_FIRST * ~obs[:, None])
    for b in range(B):
        for t in range(T):
            w, hit = warp_frames(frames[b], ctx[b], np.broadcast_to(tgt[b, t], (k, 1, 3, 4)), 52.67, seen=True)
            best = np.full((S, S), -1)
            for j in sorted(np.flatnonzero(mask[b]), key=lambda j: (rank[b, t, j], -j)):   # best first
                free = (best < 0) & hit[j, 0].numpy()
                best[free] = j
            assert np.array_equal(seen[b, t].numpy(), best >= 0)
            ys, xs = np.nonzero(best >= 0)
            want = w[best[ys, xs], 0, :, ys, xs]
            assert torch.allclose(px[b, t, :, ys, xs].T, want, atol=1e-4)


def test_latent_warp_start_reprojects_the_cached_latents_without_encoding(tmp_path, monkeypatch):
    """warp_space="latents": the start of a target at a context camera is that frame's cached latents exactly
    (nothing is decoded or encoded); elsewhere it is their reprojection, so the frames differ from the pixel
    warp's; the setting is validated, kept by world files, and old files load with pixels."""
    from camworld import fidelity
    from camworld.world_io import load_world, save_world

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    w = _world(0.5, warp_source="nearest", warp_space="latents")
    assert w.warp_space == "latents" and _world(0.5).warp_space == "pixels"     # the tiny preset's default
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    w.step(d.poses[None, 1:3])
    bank, idx = w.memories[0], np.arange(3)
    ctx = w.source._latents(bank, idx)[None]                                    # (1, 3, C, h, w)
    cext = bank.extrinsics(idx)[None]
    mask = np.ones((1, 3), bool)
    tgt = np.concatenate([cext[:, 1:2], planar_to_extrinsics(d.poses[None, None, 4])], 1)   # (1, 2, 3, 4)
    with monkeypatch.context() as mp:
        mp.setattr("camworld.model.frames._channels_last", lambda *a: pytest.fail("the latent warp encoded"))
        start = w.source._warped_latents([bank], [idx], cext, mask, tgt, ctx)
    assert start.shape == (1, 2) + tuple(ctx.shape[2:])
    assert torch.allclose(start[0, 0], ctx[0, 1], atol=1e-5)                   # at slot 1's own camera
    assert not torch.allclose(start[0, 1], ctx[0, 2], atol=1e-2)               # reprojected elsewhere

    def frames(space):
        v = _world(0.5, warp_source="nearest", warp_space=space)
        v.reset(0, d.gt[0], d.poses[0], seed=3)
        return v, v.step(d.poses[None, 1:3])

    v, a = frames("latents")
    assert np.array_equal(a, frames("latents")[1]) and not np.array_equal(a, frames("pixels")[1])
    save_world(v, tmp_path / "w")
    assert load_world(tmp_path / "w", model=v.model)[0].warp_space == "latents"
    with pytest.raises(ValueError, match="warp_space"):
        _world(0.5, warp_space="voxels")


def test_fill_unseen_keeps_what_was_seen_and_fills_holes_from_around_them():
    from camworld.model.warp import fill_unseen

    g = torch.linspace(-1, 1, 16).expand(2, 3, 16, 16).clone()            # a left-right ramp
    known = torch.ones(2, 1, 16, 16)
    known[0, :, 4:10, 3:9] = 0                                            # a hole inside
    known[1, :, :, :5] = 0                                                # the left strip a turn uncovers
    out = fill_unseen(g, known)
    assert torch.equal(out * known, g * known)                            # seen pixels untouched
    hole = known[:, 0] == 0
    assert (out[:, 0][hole] >= -1).all() and (out[:, 0][hole] <= 1).all()
    # inside a hole the ramp is carried on from both sides (no single repeated column)
    assert out[0, 0, 6, 3] < out[0, 0, 6, 8] and len(torch.unique(out[0, 0, 6, 3:9])) > 2
    # a constant frame fills with its constant; a frame with no seen pixel comes back 0
    c = fill_unseen(torch.full((1, 3, 8, 8), 0.4), known[1:, :, :8, :8])
    assert torch.allclose(c, torch.full_like(c, 0.4))
    assert torch.equal(fill_unseen(g[:1], torch.zeros(1, 1, 16, 16)), torch.zeros(1, 3, 16, 16))


def test_smooth_warp_fill_replaces_the_repeated_border_and_is_a_world_setting(tmp_path):
    """Turning, the smooth fill replaces the repeated border (streaks) in the strip the source did not see and
    keeps every seen pixel; the World setting is validated and kept by world files."""
    from camworld import fidelity
    from camworld.world_io import load_world, save_world

    scene = sim.make_scene(100_000, sim.STYLES[0])
    p0 = sim.random_trajectory(scene, 2, np.random.default_rng(0))[0]
    frames = frames_to_tensor(sim.render(scene, p0[None])[0])
    src = planar_to_extrinsics(p0[None])
    tgt = planar_to_extrinsics((p0 + [0, 0, np.deg2rad(20)])[None, None])   # turned 20 degrees: a strip is new
    b, seen = warp_frames(frames, src, tgt, 52.67, seen=True)
    s = warp_frames(frames, src, tgt, 52.67, fill="smooth")
    new = ~seen[0, 0]
    assert 0 < new.float().mean() < 0.5
    assert torch.equal(b[0, 0][:, ~new], s[0, 0][:, ~new])               # what was seen: the same
    assert (b[0, 0][:, new] - s[0, 0][:, new]).abs().mean() > 1e-3        # the new strip: not the border
    with pytest.raises(ValueError, match="fill"):
        warp_frames(frames, src, tgt, 52.67, fill="tile")

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    w = _world(0.5, warp_fill="smooth")
    assert w.warp_fill == "smooth" and _world(0.5).warp_fill == "border"
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    assert w.step(d.poses[None, 1:3]).shape == (1, 2, 32, 32, 3)
    save_world(w, tmp_path / "w")
    assert load_world(tmp_path / "w", model=w.model)[0].warp_fill == "smooth"
    with pytest.raises(ValueError, match="warp_fill"):
        _world(0.5, warp_fill="tile")


def test_network_slots_keep_the_newest_and_the_frames_nearest_the_targets_in_slot_order():
    from camworld.model.frames import network_slots

    ctx = planar_to_extrinsics(np.array([[[9.0, 9.0, 0.0], [0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [2.5, 0.0, 0.0],
                                          [4.0, 4.0, 0.0]]]))
    mask = np.array([[False, True, True, True, True]])
    tgt = planar_to_extrinsics(np.array([[[0.0, 0.0, 0.0], [5.2, 0.0, 0.0]]]))
    # the newest (slot 4, far away) always; then slots 1 and 2 (at the targets); never the padded slot 0
    assert network_slots(ctx, mask, tgt, 3).tolist() == [[1, 2, 4]]
    assert network_slots(ctx, mask, tgt, 2).tolist() == [[1, 4]]
    # more asked than valid: the padded slots fill in, still right-aligned with the newest last
    assert network_slots(ctx, mask, tgt, 5).tolist() == [[0, 1, 2, 3, 4]]


def test_world_network_context_changes_only_what_the_network_sees_and_is_saved(tmp_path):
    """network_context=n: the DiT sees n context frames, the paste still every retrieved one (a return still
    shows the frame seen there); validated, and kept by world files."""
    from camworld import fidelity
    from camworld.world_io import load_world, save_world

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]

    from camworld.world import World

    torch.manual_seed(0)
    m = WorldModel(preset("tiny"))
    with torch.no_grad():                      # an untrained DiT's zero-initialised gates ignore the context
        for prm in m.dit.parameters():
            prm.add_(0.05 * torch.randn_like(prm))

    def run(n, paste=False):
        w = World(m, device="cpu", warp_start=0.5, warp_source="nearest", network_context=n, warp_paste=paste,
                  context_size=6)
        w.reset(0, d.gt[0], d.poses[0], seed=3)
        for t in range(1, 4):
            w.step(d.poses[None, t:t + 1])
        return w, w.step(np.stack([d.poses[1], d.poses[0]])[None])

    w, a = run(2)
    assert w.network_context == 2 and _world(0.5).network_context == 0
    assert np.array_equal(a, run(2)[1]) and not np.array_equal(a, run(0)[1])
    assert np.array_equal(run(0)[1], run(6)[1])                              # n >= k: every frame, as 0
    _, p = run(2, paste=True)
    assert np.abs(p[0, 1].astype(int) - d.gt[0].astype(int)).max() <= 1     # the start pose: its frame
    save_world(w, tmp_path / "w")
    assert load_world(tmp_path / "w", model=w.model)[0].network_context == 2
    with pytest.raises(ValueError, match="network_context"):
        _world(0.5, network_context=-1)


def test_schedule_through_a_time_inserts_one_knot_and_is_validated():
    full = timesteps(4, 3.0)                                    # 1, 0.9, 0.75, 0.5, 0
    ts = timesteps(4, 3.0, through=0.3)
    assert len(ts) == len(full) + 1 and torch.all(ts[:-1] > ts[1:]) and bool((ts - 0.3).abs().lt(1e-6).any())
    assert torch.allclose(timesteps(4, 3.0, through=float(full[3])), full)     # already a knot: unchanged
    assert torch.allclose(timesteps(4, 3.0, start=0.75, through=0.3), torch.tensor([0.75, 0.5, 0.3, 0.0]))
    with pytest.raises(ValueError, match="through"):
        timesteps(4, 3.0, start=0.5, through=0.6)


def test_inpainting_sampler_holds_the_known_cells_until_their_time_then_refines_everything():
    """known_until: after each step down to that time the known cells are put back at the step's time; the
    network then moves every cell; unknown cells are generated from the start noise all the way."""
    calls, seen = [], []
    known = torch.randn(1, 2, 4, 4, 4)
    eps = torch.randn(1, 2, 4, 4, 4)
    m = torch.zeros(1, 2, 1, 4, 4)
    m[..., :2] = 1                                               # the left half is known

    def dit(z, t, ext, state, prep=None):
        calls.append(float(t[0]))
        seen.append(z.clone())
        return torch.ones_like(z)                                # a constant velocity: easy to follow

    out = sample(dit, known.shape, None, None, steps=4, shift=3.0, noise=eps.clone(), start=1.0, known=known,
                 known_mask=m, known_eps=eps, known_until=0.3)
    assert calls == pytest.approx([1.0, 0.9, 0.75, 0.5, 0.3])
    for t, z in zip(calls[1:], seen[1:]):                        # every call sees the known cells at its time
        assert torch.allclose(z[..., :2], ((1 - t) * known + t * eps)[..., :2], atol=1e-6)
    assert torch.allclose(out[..., :2], ((1 - 0.3) * known + 0.3 * eps)[..., :2] - 0.3, atol=1e-6)
    assert torch.allclose(out[..., 2:], eps[..., 2:] - 1.0, atol=1e-6)      # unknown: integrated from t = 1
    with pytest.raises(ValueError, match="together"):
        sample(dit, known.shape, None, None, steps=4, noise=eps, known=known)


def test_world_novel_start_generates_unseen_cells_from_more_noise_and_is_validated():
    """novel_start = warp_start is the plain warp start bit for bit; a higher one changes what the start's source
    did not see (a turn uncovers a strip), deterministically; below the warp start it is an error."""
    from camworld import fidelity

    d = fidelity.make_drives("discrete", 1, 2, 32, seed=0)[0]
    turn = d.poses[None, 1:3].copy()
    turn[..., 2] += np.deg2rad([10.0, 20.0])

    def run(**kw):
        w = _world(0.5, warp_source="nearest", warp_fill="smooth", **kw)
        w.reset(0, d.gt[0], d.poses[0], seed=3)
        return w, w.step(turn)

    w, plain = run()
    assert w.novel_start == 0.5
    assert np.array_equal(plain, run(novel_start=0.5)[1])
    a = run(novel_start=1.0)[1]
    assert np.array_equal(a, run(novel_start=1.0)[1]) and not np.array_equal(a, plain)
    with pytest.raises(ValueError, match="novel_start"):
        run(novel_start=0.4)


def test_paste_warp_source_starts_from_the_paste_composite_computed_once(monkeypatch):
    """warp_source="paste": the start is the encoded composite the paste shows (filled where no context frame
    saw), the context is reprojected once per pass for both, and a return still shows the remembered frame."""
    from camworld import fidelity
    from camworld.model import frames as frames_mod
    from camworld.model.warp import fill_unseen

    d = fidelity.make_drives("discrete", 1, 3, 32, seed=0)[0]
    w = _world(0.5, warp_source="paste", warp_paste=True, warp_fill="smooth")
    assert w.warp_source == "paste"
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    w.step(d.poses[None, 1:3])
    calls, starts = [], []
    real_reproject, real_encode = frames_mod.ModelFrames._reproject, frames_mod.ModelFrames._encode_warp

    def reproject(self, *a, **k):
        out = real_reproject(self, *a, **k)
        calls.append(out)
        return out

    def encode(self, px):
        starts.append(px)
        return real_encode(self, px)

    monkeypatch.setattr(frames_mod.ModelFrames, "_reproject", reproject)
    monkeypatch.setattr(frames_mod.ModelFrames, "_encode_warp", encode)
    back = w.step(d.poses[None, [2, 0]])                          # the second target returns to the first frame
    assert len(calls) == 1 and len(starts) == 1
    px, seen, filled = calls[0]
    assert bool((filled >= seen).all())
    want = fill_unseen(px.flatten(0, 1), filled.flatten(0, 1)[:, None].float()).reshape(px.shape)
    assert torch.equal(starts[0], want)
    assert psnr(back[0, 1], d.gt[0]) > 40                        # the paste shows the frame seen there


def test_reproject_fallback_fills_what_no_frame_saw_from_the_best_frame_at_the_assumed_depth():
    """Under a learned depth whose points never land in the target (here: all behind the camera), nothing is
    seen; the fallback fills the target from the best slot at the assumed depth (at its own camera: the frame)."""
    from camworld.model.warp import reproject, source_points

    scene = sim.make_scene(100_000, sim.STYLES[0])
    p0 = sim.random_trajectory(scene, 2, np.random.default_rng(0))[0]
    frame = frames_to_tensor(sim.render(scene, p0[None])[0])[None]              # (1, 1, 3, S, S)
    S = frame.shape[-1]
    ext = planar_to_extrinsics(p0[None, None])                                   # (1, 1, 3, 4)
    pts = source_points(torch.as_tensor(ext, dtype=torch.float32), torch.full((1, 1, 64), -1.0), 8, 52.67)
    args = (frame, ext, np.ones((1, 1), bool), np.ones((1, 1), bool), ext, 52.67)
    out, seen = reproject(*args, src_points=pts)
    assert not seen.any()
    out, seen2, filled = reproject(*args, src_points=pts, fallback=True)
    assert torch.equal(seen2, seen) and bool(filled.all())
    assert psnr(tensor_to_frames(out[0, 0]), tensor_to_frames(frame[0, 0])) > 40


def test_nearest_known_finds_a_nearest_seen_pixel_and_mirror_fill_reflects_the_texture():
    from camworld.model.warp import mirror_unseen, nearest_known

    known = torch.ones(3, 16, 16, dtype=torch.bool)
    known[0, :, 11:] = False                                             # a strip at the right edge
    known[1, 5:9, 4:10] = False                                          # a hole inside
    q = nearest_known(known)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    p = torch.stack([yy, xx])
    for n in range(3):
        d = ((q[n] - p) ** 2).sum(0).float().sqrt()
        assert bool(known[n][q[n][0], q[n][1]].all())                    # every pixel points at a seen one
        ks = torch.nonzero(known[n]).float()                             # ... a nearest one (brute force)
        best = torch.cdist(p.reshape(2, -1).T.float(), ks).min(1).values.reshape(16, 16)
        assert torch.allclose(d, best)
    assert torch.equal(q[2], p)                                          # all seen: each pixel itself
    cols = torch.arange(16.0).expand(1, 3, 16, 16)
    out = mirror_unseen(cols, known[:1, None].float())
    assert torch.equal(out[0, :, :, :11], cols[0, :, :, :11])           # what was seen stays
    assert out[0, 0, 0, 11:].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]      # the strip mirrors the seen columns
    checker = ((yy // 2 + xx // 2) % 2).float().expand(1, 3, 16, 16)     # a texture keeps its contrast
    from camworld.model.warp import fill_unseen
    m, s = mirror_unseen(checker, known[:1, None].float()), fill_unseen(checker, known[:1, None].float())
    grad = lambda a: a[0, 0, :, 11:].diff(dim=-1).abs().mean()
    assert grad(m) > 0.4 and grad(s) < 0.2
    with pytest.raises(ValueError, match="fill"):
        warp_frames(cols.clone(), planar_to_extrinsics(np.zeros((1, 3))),
                    planar_to_extrinsics(np.zeros((1, 1, 3))), 52.67, fill="tile")


def test_rows_fill_carries_each_rows_colours_into_the_strip_and_falls_back_where_a_row_saw_nothing():
    """Horizontal bands (a ceiling, a wall, a floor) continue into an unseen strip band by band with the rows fill,
    where the 2D fill mixes them; a row with no seen pixel takes the 2D fill; seen pixels stay as they are."""
    from camworld.model.warp import fill_holes, fill_rows, fill_unseen

    S = 16
    bands = torch.zeros(1, 3, S, S)
    bands[:, :, :5], bands[:, :, 5:11], bands[:, :, 11:] = 1.0, 0.2, -0.6          # ceiling / wall / floor
    bands[:, 1] *= 0.5                                                               # channels differ
    known = torch.ones(1, 1, S, S)
    known[..., 10:] = 0                                                              # a strip a turn uncovers
    r, s = fill_rows(bands, known), fill_unseen(bands, known)
    assert torch.equal(r[..., :10], bands[..., :10]) and torch.equal(s[..., :10], bands[..., :10])
    assert torch.allclose(r, bands)                                                  # every band carries on
    assert (s[..., 10:] - bands[..., 10:]).abs().max() > 0.3                         # the 2D fill mixes them
    assert torch.equal(fill_holes(bands, known, "rows"), r)
    ramp = torch.arange(float(S)).expand(1, 1, S, S).clone()                        # a row's nearer colours count more
    near = fill_rows(ramp, known)[0, 0, 0, 10:]
    assert bool((near >= 4.5).all()) and bool((near <= 9.0).all()) and near[0] > near[-1] - 1e-6
    hole = known.clone()
    hole[..., 7, :] = 0                                                              # a row nobody saw
    out = fill_rows(bands, hole)
    assert torch.allclose(out[..., 7, :], fill_unseen(fill_rows(bands, known), hole.amax(-1, keepdim=True)
                                                     .expand_as(hole))[..., 7, :])
    assert not torch.isnan(out).any() and torch.equal(fill_rows(bands, torch.ones_like(known)), bands)


def test_world_mirror_fill_is_a_setting_that_changes_only_the_made_up_strip(tmp_path):
    from camworld import fidelity
    from camworld.world_io import load_world, save_world

    d = fidelity.make_drives("discrete", 1, 2, 32, seed=0)[0]
    turn = d.poses[None, 1:3].copy()
    turn[..., 2] += np.deg2rad([12.0, 24.0])

    def run(fill, source="nearest"):
        w = _world(0.5, warp_source=source, warp_fill=fill, warp_paste=True)
        w.source.record_parts = True
        w.reset(0, d.gt[0], d.poses[0], seed=3)
        return w, w.step(turn, append=False)

    w, m = run("mirror")
    seen = w.source.last_parts["seen"]
    _, s = run("smooth")
    assert np.array_equal(m, run("mirror")[1])
    assert np.array_equal(m[seen], s[seen]) and not np.array_equal(m[~seen], s[~seen])
    _, r = run("rows")
    assert np.array_equal(r[seen], s[seen]) and not np.array_equal(r[~seen], s[~seen])
    assert run("mirror", "paste")[1].shape == m.shape
    save_world(w, tmp_path / "w")
    assert load_world(tmp_path / "w", model=w.model)[0].warp_fill == "mirror"


def test_points_warp_of_coarser_frames_samples_each_cell_at_its_pixels_mean_and_is_validated():
    """Latents under a learned depth: scene points at the frame size warp a 4x coarser grid (a latent) as the
    assumed-depth warp does at that size (a turn: the same map), a cell counts as seen only where the source saw
    all its pixels, and a point grid the frames do not divide is an error."""
    from camworld.model.warp import _scene_points

    S, s, hfov = 32, 8, 52.67
    src = planar_to_extrinsics(np.array([[[0.0, 0.0, 0.0]]]))[:, 0].astype(np.float32)          # (1, 3, 4)
    tgt = planar_to_extrinsics(np.array([[[0.0, 0.0, 0.1], [0.0, 0.0, -0.3]]])).astype(np.float32)  # (1, 2, 3, 4)
    lat = torch.randn(1, 4, s, s, generator=torch.Generator().manual_seed(0))
    X = _scene_points(torch.as_tensor(tgt, dtype=torch.float64), S, hfov, 6.0, True)            # (1, 2, S*S, 3)
    src_t = np.repeat(src[:, None], 2, axis=1)                                                   # one per target
    a, hit_a = warp_frames(lat[:, None].expand(1, 2, 4, s, s), src_t, tgt, hfov, points=X, seen=True)
    b, hit_b = warp_frames(lat, src, tgt, hfov, 6.0, floor=True, seen=True)
    assert a.shape == b.shape == (1, 2, 4, s, s) and hit_a.shape == (1, 2, s, s)
    assert bool(hit_a[0, 1].any()) and not bool(hit_a[0, 1].all())        # a turn: a strip the source never saw
    both = hit_a & hit_b
    assert torch.allclose(a.permute(0, 1, 3, 4, 2)[both], b.permute(0, 1, 3, 4, 2)[both], atol=0.05)
    assert not bool((hit_a & ~hit_b).any())                              # every pixel seen, not just its centre
    with pytest.raises(ValueError, match="divide"):
        warp_frames(torch.zeros(1, 2, 4, 12, 12), src_t, tgt, hfov, points=X)


def test_world_latent_warp_under_learned_depth_never_encodes_and_differs_from_the_pixel_warp(monkeypatch):
    """warp_space="latents" with a learned depth (the shipped depth net's kind): the start is the cached latents
    warped at each frame's own depth, with no VAE encoder in the step; deterministic; not the pixel warp."""
    from camworld import fidelity
    from camworld.model.depth import DepthNet
    from camworld.world import World

    def world(space):
        torch.manual_seed(0)
        m = WorldModel(preset("tiny"))
        object.__setattr__(m, "depth_net", DepthNet(8, size=16).eval())
        return World(m, device="cpu", warp_start=0.5, warp_source="nearest", learned_depth=True, warp_space=space)

    d = fidelity.make_drives("continuous", 1, 1, 32, seed=1)[0]

    def run(space):
        w = world(space)
        w.reset(0, d.gt[0], d.poses[0], seed=3)
        return w.step(d.poses[None, 1:3])

    with monkeypatch.context() as mp:
        mp.setattr("camworld.model.frames._channels_last", lambda *a: pytest.fail("the latent warp encoded"))
        a = run("latents")
    assert np.array_equal(a, run("latents")) and not np.array_equal(a, run("pixels"))


@pytest.mark.parametrize("learned", [False, True])
def test_mixed_warp_start_encodes_the_first_target_and_warps_its_latents_on(learned, monkeypatch):
    """warp_space="mixed": the first target's start is the pixel warp's (to the rounding of one frame encoded
    alone); the later targets' are those latents reprojected (one encode per world and pass, not one per target);
    deterministic; under the assumed and the learned depth; not the pixel warp's frames."""
    from camworld import fidelity
    from camworld.model.depth import DepthNet
    from camworld.world import World

    def world(space):
        torch.manual_seed(0)
        m = WorldModel(preset("tiny"))
        object.__setattr__(m, "depth_net", DepthNet(8, size=16).eval())
        return World(m, device="cpu", warp_start=0.5, warp_source="nearest", learned_depth=learned,
                     warp_space=space, frames_per_pass=2)

    d = fidelity.make_drives("continuous", 1, 1, 32, seed=1)[0]
    w = world("mixed")
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    w.step(d.poses[None, 1:3])
    bank, idx = w.memories[0], np.arange(3)
    ctx = w.source._latents(bank, idx)[None]
    cext, mask = bank.extrinsics(idx)[None], np.ones((1, 3), bool)
    tgt = planar_to_extrinsics(d.poses[None, 3:5])
    pts = w.source._source_points([bank], [idx], cext) if learned else None
    calls = []
    real = w.source._encode_warp
    with monkeypatch.context() as mp:
        mp.setattr(w.source, "_encode_warp", lambda x: calls.append(x.shape[:2]) or real(x))
        z, hit = w.source._warped_latents([bank], [idx], cext, mask, tgt, ctx, pts, seen=True)
    assert calls == [(1, 1)] and z.shape == (1, 2) + tuple(ctx.shape[2:]) and hit.shape == (1, 2, 32, 32)
    w.source.warp_space = "pixels"
    zp = w.source._warped_latents([bank], [idx], cext, mask, tgt, ctx, pts)
    assert torch.allclose(z[:, 0], zp[:, 0], atol=1e-4) and not torch.allclose(z[:, 1], zp[:, 1], atol=1e-3)

    def run(space):
        v = world(space)
        v.reset(0, d.gt[0], d.poses[0], seed=3)
        return v.step(d.poses[None, 1:3])

    a = run("mixed")
    assert np.array_equal(a, run("mixed")) and not np.array_equal(a, run("pixels"))
