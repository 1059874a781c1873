"""camworld.model.depth: the learned depth for the warp (network, files, geometry, the world's option)."""

import json

import numpy as np
import pytest
import torch

from camworld.geometry import planar_to_extrinsics
from camworld.model import WorldModel, preset
from camworld.model.depth import DepthNet, load_depth_net
from camworld.model.warp import _scene_points


def test_depth_net_shapes_files_and_errors(tmp_path):
    torch.manual_seed(0)
    net = DepthNet(8)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert net(x).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="divide by 8"):
        net(torch.zeros(1, 3, 30, 30))
    net.save(tmp_path / "d", record={"steps": 1})
    back = load_depth_net(tmp_path / "d.safetensors")
    assert back.channels == 8 and back.size == 64 and torch.equal(back(x), net.eval()(x))
    DepthNet(8, size=16).save(tmp_path / "d16")
    assert load_depth_net(tmp_path / "d16").size == 16
    with pytest.raises(ValueError, match="multiple of 8"):
        DepthNet(8, size=12)
    with pytest.raises(FileNotFoundError, match="no depth net"):
        load_depth_net(tmp_path / "missing")
    doc = json.loads((tmp_path / "d.json").read_text())
    (tmp_path / "d.json").write_text(json.dumps({**doc, "format": "other"}))
    with pytest.raises(ValueError, match="not a camworld depth net"):
        load_depth_net(tmp_path / "d")
    (tmp_path / "d.json").write_text(json.dumps({**doc, "config": {"channels": 16}}))
    with pytest.raises(ValueError, match="do not match"):
        load_depth_net(tmp_path / "d")


def test_depth_points_put_every_known_pixel_at_the_asked_z_and_the_rest_at_the_fallback():
    from camworld.model.warp import depth_points

    tgt = torch.as_tensor(planar_to_extrinsics(np.array([[[1.0, -2.0, 0.7], [0.0, 0.0, -2.0]]])))
    X = _scene_points(tgt, 8, 52.67, 6.0, True)
    z = torch.rand(1, 2, 64, dtype=torch.float64) * 10 + 0.5
    known = torch.rand(1, 2, 64) > 0.3
    P = depth_points(tgt, z, known, X, 52.67)
    cam = (P - tgt[..., 3][:, :, None]) @ tgt[..., :3]
    assert torch.allclose(cam[..., 2][known], z[known])
    rays = (X - tgt[..., 3][:, :, None]) @ tgt[..., :3]
    assert torch.allclose(cam[..., :2] / cam[..., 2:], rays[..., :2] / rays[..., 2:])    # the same pixel rays
    assert torch.equal(P[~known], X[~known])


def _world(**kw):
    from camworld.world import World

    torch.manual_seed(0)
    m = WorldModel(preset("tiny"))
    object.__setattr__(m, "depth_net", DepthNet(8, size=16).eval())     # half the tiny preset's 32x32 frames
    return World(m, device="cpu", warp_start=0.5, warp_source="nearest", **kw)


def test_learned_depth_changes_walks_not_turns_and_is_validated():
    """A turn in place warps the same whatever the depth; a step forward does not."""
    from camworld import fidelity
    from camworld.world import World

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    p0 = d.poses[0]
    turn = np.stack([p0 + [0, 0, 0.05], p0 + [0, 0, 0.1]])[None]
    walk = np.stack([p0 + [0.3 * np.cos(p0[2]), 0.3 * np.sin(p0[2]), 0]] * 2)[None]

    def run(target, learned):
        w = _world(learned_depth=learned, warp_paste=True)
        w.reset(0, d.gt[0], p0, seed=3)
        return w.step(target)

    assert np.abs(run(turn, True).astype(int) - run(turn, False).astype(int)).max() <= 1
    assert np.abs(run(walk, True).astype(int) - run(walk, False).astype(int)).max() > 1
    assert _world().learned_depth is False                       # off unless the checkpoint's config names it
    assert _world(learned_depth=True).learned_depth is True
    with pytest.raises(ValueError, match="learned_depth"):
        World(WorldModel(preset("tiny")), device="cpu", learned_depth=True)
    m = WorldModel(preset("tiny"))
    object.__setattr__(m, "depth_net", DepthNet(8, size=24))
    with pytest.raises(ValueError, match="does not divide"):
        World(m, device="cpu", learned_depth=True)


def test_checkpoint_naming_a_depth_net_loads_it(tmp_path):
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.diffusion.depth_net = "depth.safetensors"
    WorldModel(cfg).save(tmp_path / "ck")
    DepthNet(8, size=16).save(tmp_path / "depth")
    m = WorldModel.load(tmp_path / "ck.safetensors", device="cpu")
    assert isinstance(m.depth_net, DepthNet) and "depth_net" not in dict(m.named_children())
    assert not any(k.startswith("depth_net") for k in m.state_dict())
    from camworld.world import World

    assert World(m, device="cpu").learned_depth is True          # named by the config: on by default
    cfg.diffusion.depth_net = None                               # a depth.safetensors beside it: off unless asked
    WorldModel(cfg).save(tmp_path / "ck2")
    m2 = WorldModel.load(tmp_path / "ck2.safetensors", device="cpu")
    assert World(m2, device="cpu").learned_depth is False and World(m2, device="cpu", learned_depth=True).learned_depth


def test_splat_depth_is_exact_at_the_source_camera_and_under_a_walk():
    """Each source frame's own depth seen from a target: the identity at the source camera; after a step
    forward, the sim's true depth of the target view where the source saw it (a few cm)."""
    from camworld import sim
    from camworld.model.warp import depth_points, own_depth, source_points, splat_depth

    S, hfov = 32, 52.67
    scene = sim.make_scene(100_001, sim.STYLES[1])
    p0 = sim.random_trajectory(scene, 2, np.random.default_rng(1))[0]
    p1 = p0 + [0.6 * np.cos(p0[2]), 0.6 * np.sin(p0[2]), 0.0]
    _, dep = sim.render(scene, np.stack([p0, p1]), S, S)
    src = torch.as_tensor(planar_to_extrinsics(p0[None]))                   # (1, 3, 4)
    pts = source_points(src, torch.as_tensor(dep[:1], dtype=torch.float64).reshape(1, -1), S, hfov)   # (1, N, 3)
    z, known = splat_depth(pts, src, S, hfov)                               # the source camera itself
    assert known.all() and torch.allclose(z[0], torch.as_tensor(dep[0], dtype=torch.float64).reshape(-1))
    tgt = torch.as_tensor(planar_to_extrinsics(p1[None]))
    z, known = splat_depth(pts, tgt, S, hfov)
    assert known.float().mean() > 0.9
    true = torch.as_tensor(dep[1], dtype=torch.float64).reshape(-1)
    err = (z[0] - true).abs()[known[0]]
    assert err.median() < 0.1 and (err < 0.5).float().mean() > 0.9, err.median()
    fb = _scene_points(tgt[None], S, hfov, 6.0, True)[0]                    # (1, N, 3) the assumed depth's
    z2, k2 = own_depth(pts, tgt, S, hfov)
    P = depth_points(tgt, z2, k2, fb, hfov)
    assert torch.equal(k2, known) and torch.equal(P[0][~known[0]], fb[0][~known[0]])
    cam = (P[0] - tgt[0, :, 3]) @ tgt[0, :, :3]
    assert torch.allclose(cam[known[0], 2], z[0][known[0]])                 # on the target's rays at z

    # a depth at half the frame side: splatted at 16x16, each frame pixel takes its coarse pixel's depth
    coarse = torch.nn.functional.avg_pool2d(torch.as_tensor(dep[:1], dtype=torch.float64)[None], 2).reshape(1, -1)
    zc, kc = own_depth(source_points(src, coarse, S // 2, hfov), tgt, S, hfov)
    assert zc.shape == z.shape and kc.float().mean() > 0.9
    assert (zc[0] - true).abs()[kc[0]].median() < 0.2
    blocks = zc[0].reshape(S // 2, 2, S // 2, 2)
    assert torch.equal(blocks, blocks[:, :1, :, :1].expand_as(blocks))
    with pytest.raises(ValueError, match="square side"):
        own_depth(pts[:, :100], tgt, S, hfov)


def test_a_turn_away_from_everything_the_source_saw_is_unknown():
    from camworld.model.warp import source_points, splat_depth

    src = torch.as_tensor(planar_to_extrinsics(np.zeros((2, 3))))
    back = torch.as_tensor(planar_to_extrinsics(np.array([[0.0, 0.0, np.pi], [0.0, 0.0, 0.0]])))
    pts = source_points(src, torch.full((2, 64), 4.0, dtype=torch.float64), 8, 52.67)
    z, known = splat_depth(pts, back, 8, 52.67)             # row 0 turned away, row 1 at the source camera
    assert not known[0].any() and known[1].all() and torch.allclose(z[1], torch.full((64,), 4.0, dtype=z.dtype))


def test_learned_depth_reprojects_each_memory_frame_at_its_own_cached_depth():
    """The depth net runs once per memory frame (cached in the bank, forgotten on reset); the paste at a
    context camera returns that frame's pixels, whatever else is in the context."""
    from camworld import fidelity

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    w = _world(learned_depth=True, warp_paste=True)
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    calls = []
    w.source.depth_net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    w.step(d.poses[None, 1:3])
    w.step(d.poses[None, 3:5])
    bank = w.memories[0]
    assert set(bank.derived["depth"]) <= set(range(len(bank))) and sum(calls) == len(bank.derived["depth"])
    n = sum(calls)
    w.step(d.poses[None, [1, 2]])                                 # a return: every context frame cached already
    assert sum(calls) - n <= 2                                    # at most the two newest frames are new
    src = w.source
    for idx in (np.arange(5), np.array([2, 4]), np.array([0, 1, 2])):   # frame 2 at its own camera
        cext = bank.extrinsics(idx)[None].astype(np.float32)
        tgt = bank.extrinsics(np.array([2]))[None].astype(np.float32)
        noise = np.random.default_rng(0).integers(0, 255, (1, 1, 32, 32, 3), dtype=np.uint8)
        pts = src._source_points([bank], [idx], cext)
        out = src._paste(noise, [bank], [idx], cext, np.ones((1, len(idx)), bool), tgt, pts)
        assert np.abs(out[0, 0].astype(int) - bank.frames(np.array([2]))[0].astype(int)).max() <= 1
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    assert w.memories[0].derived == {}


def test_depth_stage_trains_resumes_exactly_and_writes_a_loadable_net(tmp_path):
    """camworld train --stage depth: batches are a function of (seed, step), a resumed run ends with the same
    weights as a straight one, and the file loads with its record."""
    from camworld.train.cli import main
    from camworld.train.depth import depth_batch, soften

    frames, logd, factors = depth_batch(3, seed=0, batch_size=8, frame_size=32, blur=0.5)
    again = depth_batch(3, seed=0, batch_size=8, frame_size=32, blur=0.5)
    assert frames.shape == (8, 32, 32, 3) and logd.shape == (8, 1, 32, 32) and np.array_equal(again[0], frames)
    x = torch.rand(3, 3, 8, 8)
    y = soften(x, [1, 2, 4])
    assert torch.equal(y[0], x[0]) and not torch.allclose(y[1], x[1])
    assert torch.allclose(y[2].mean(), x[2].mean(), atol=1e-5)       # a blur keeps the frame's mean

    common = ["--stage", "depth", "--steps", "4", "--log-every", "2", "--save-every", "2", "--threads", "1", "--depth-size", "16",
              "--depth-channels", "8"]
    main(common + ["--out", str(tmp_path / "a")])
    main(common[:2] + ["--steps", "2"] + common[4:] + ["--out", str(tmp_path / "b")])
    main(common + ["--out", str(tmp_path / "b"), "--resume"])
    a, b = load_depth_net(tmp_path / "a" / "depth"), load_depth_net(tmp_path / "b" / "depth")
    assert (a.channels, a.size) == (8, 16) and all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                                    b.state_dict().values()))
    rec = json.loads((tmp_path / "a" / "depth.json").read_text())["record"]
    assert rec["stage"] == "depth" and rec["steps"] == 4 and rec["held_out_log_error"] > 0
    rows = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,heldout_log_error") and [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    with pytest.raises(SystemExit, match="blur"):
        main(common + ["--out", str(tmp_path / "c"), "--depth-blur", "2"])
    with pytest.raises(SystemExit, match="recorded"):
        main(common + ["--out", str(tmp_path / "c"), "--data", str(tmp_path)])


def test_depth_net_learns_on_a_fixed_batch():
    from camworld.train.depth import depth_batch, soften
    from camworld.model.vae import frames_to_tensor

    torch.manual_seed(0)
    frames, logd, factors = depth_batch(0, seed=1, batch_size=8, frame_size=32, blur=0.5)
    x, d = soften(frames_to_tensor(frames), factors), torch.as_tensor(logd)
    net = DepthNet(8)
    opt = torch.optim.AdamW(net.parameters(), 2e-3)
    losses = []
    for _ in range(30):
        loss = (net(x) - d).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_a_warp_start_the_source_did_not_see_keeps_the_assumed_depths_sample(monkeypatch):
    """Where a source frame saw none of a target, the learned-depth start is the assumed-depth start (a start
    with nothing in it made the network draw uniform frames, which memory then kept)."""
    from camworld import fidelity

    d = fidelity.make_drives("discrete", 1, 1, 32, seed=0)[0]
    w = _world(learned_depth=True, warp_paste=True)
    w.reset(0, d.gt[0], d.poses[0], seed=3)
    w.step(d.poses[None, 1:3])
    src, bank, idx = w.source, w.memories[0], np.arange(3)
    ctx = src._latents(bank, idx)[None]
    cext = bank.extrinsics(idx)[None].astype(np.float32)
    tgt = planar_to_extrinsics(d.poses[None, 3:5] + [0.4, 0.2, 0.3]).astype(np.float32)
    mask = np.ones((1, 3), bool)
    pts = src._source_points([bank], [idx], cext)
    assumed = src._warped_latents([bank], [idx], cext, mask, tgt, ctx, None)
    assert not torch.allclose(src._warped_latents([bank], [idx], cext, mask, tgt, ctx, pts), assumed, atol=1e-3)
    monkeypatch.setattr("camworld.model.warp.own_depth",
                        lambda p, t, size, h: (torch.ones(*p.shape[:-2], size * size), torch.zeros(*p.shape[:-2], size * size, dtype=torch.bool)))
    assert torch.allclose(src._warped_latents([bank], [idx], cext, mask, tgt, ctx, pts), assumed, atol=1e-4)
