"""6-DoF cameras in World, ModelFrames and the envs (issue 14): planar paths unchanged, 6-DoF targets stored
and retrieved by the frustum rule, 6-DoF "pose" actions on a model marked 6-DoF, slerp, errors.

A tiny untrained model (32x32 frames); a model counts as trained on 6-DoF cameras when its checkpoint's record
says ``"cameras": "6dof"`` (``camworld.model.frames.checkpoint_cameras``).
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

from camworld.geometry import (CAMERA_HEIGHT, euler_to_extrinsics, extrinsics_to_planar, planar_to_extrinsics,
                               wrap_angle)
from camworld.motion import (ActionBounds, approach_extrinsics, interpolate_extrinsics, rotation_angle,
                             segment_extrinsics, slerp)
from camworld.retrieval import retrieve
from camworld.world import World, load_world_model


def _walk(pose, n, B=1, dyaw=0.15):
    t = np.repeat(np.asarray(pose, float)[None], n, 0)
    t[:, 2] += dyaw * np.arange(1, n + 1)
    return np.repeat(t[None], B, 0)                              # (B, n, 3)


def _climb(pose, n, dz=0.3, pitch=0.25):
    """n cameras rising from ``pose`` (planar) and pitching up: (n, 3, 4)."""
    x, y, yaw = pose
    s = np.arange(1, n + 1)
    return euler_to_extrinsics(x + 0.1 * s, y, CAMERA_HEIGHT + dz * s, yaw, pitch * s, 0.05 * s)


class Spy:
    """Records the camera matrices ``WorldModel.generate`` is called with, then calls it."""

    def __init__(self, model, monkeypatch):
        self.calls, real = [], model.generate

        def generate(ctx, mask, ctx_ext, tgt_ext, *a, **kw):
            self.calls.append((ctx_ext.cpu().numpy(), tgt_ext.cpu().numpy(), mask.cpu().numpy()))
            return real(ctx, mask, ctx_ext, tgt_ext, *a, **kw)

        monkeypatch.setattr(model, "generate", generate)


@pytest.fixture
def model6(ckpt6):
    """The tiny model of ``ckpt6`` as ``load_world_model`` gives it (``trained_cameras == "6dof"``)."""
    return load_world_model(ckpt6, device="cpu")


@pytest.fixture(scope="module")
def ckpt6(tmp_path_factory):
    """A tiny checkpoint whose record marks it as trained on 6-DoF cameras (as an exported run nests it)."""
    import torch

    from camworld.model import WorldModel, preset

    torch.manual_seed(0)
    return str(WorldModel(preset("tiny")).save(tmp_path_factory.mktemp("ckpt6") / "tiny6",
                                               record={"dit": {"stage": "dit", "cameras": "6dof"}}))


# ---------------------------------------------------------------- planar paths unchanged


def test_planar_targets_take_the_planar_path(model, start, monkeypatch):
    """A planar world: retrieval by the planar rule on (x, y, yaw), the DiT sees planar_to_extrinsics of the
    memory's poses and of the targets, bit for bit; level extrinsics at eye height are those poses (the same
    frames and retrieved indices)."""
    frame, pose = start
    spy = Spy(model, monkeypatch)

    def run(as_extrinsics):
        w = World(model, num_worlds=2, retrieval="fov+nonadj", context_size=4)
        for i in range(2):
            w.reset(i, frame, pose, seed=7 + i)
        out, picked = [], []
        for j in range(4):
            tp = _walk(pose, 2, B=2, dyaw=0.1 * (j + 1) * (-1) ** j)
            if as_extrinsics:
                tp = planar_to_extrinsics(tp)
            rngs = [copy.deepcopy(w.camera_state(i)["rng"]) for i in range(2)]
            n = len(spy.calls)
            res = w.step_result(tp)
            for i in range(2):
                mem = w.memory_of(i)
                T = np.asarray(tp[i])
                planar_t = extrinsics_to_planar(T) if T.ndim == 3 else T
                want = retrieve("fov+nonadj", mem.poses[:-2], mem.times[:-2], planar_t, 4, rngs[i])
                np.testing.assert_array_equal(res.retrieved[i], want)
                ctx_ext, tgt_ext, mask = spy.calls[n]
                k = mask.shape[1]
                sel = mask[i]
                np.testing.assert_array_equal(ctx_ext[i][sel], planar_to_extrinsics(mem.poses[want]).astype(np.float32))
                np.testing.assert_array_equal(ctx_ext[i][~sel], np.repeat(ctx_ext[i][-1:], k - sel.sum(), 0))
                np.testing.assert_array_equal(tgt_ext[i], planar_to_extrinsics(planar_t).astype(np.float32))
            out.append(res.frames)
            picked += res.retrieved
        return np.stack(out), picked, w

    a, ra, wa = run(False)
    assert wa.cameras == "planar"
    np.testing.assert_array_equal(wa.memory_of(0).extrinsics(), planar_to_extrinsics(wa.memory_of(0).poses))
    c, rc, wc = run(True)
    np.testing.assert_array_equal(a, c)
    assert all(np.array_equal(x, y) for x, y in zip(ra, rc))
    pc, pa = wc.memory_of(1).poses, wa.memory_of(1).poses                 # the same poses, yaw wrapped
    np.testing.assert_allclose(pc[:, :2], pa[:, :2], atol=1e-12)
    np.testing.assert_allclose(wrap_angle(pc[:, 2] - pa[:, 2]), 0.0, atol=1e-12)


# ---------------------------------------------------------------- 6-DoF targets in a World


def test_six_dof_targets_are_stored_and_retrieved_by_the_frustum_rule(model6, start, monkeypatch):
    frame, pose = start
    w = World(model6, num_worlds=1, retrieval="fov", context_size=6)
    assert w.cameras == "6dof"
    w.reset(0, frame, pose, seed=0)
    spy = Spy(model6, monkeypatch)
    up = euler_to_extrinsics(pose[0], pose[1], CAMERA_HEIGHT, pose[2], np.deg2rad(80.0), 0.0)   # the sky, same spot
    climb = _climb(pose, 2)
    w.step(np.stack([up, climb[0]])[None])
    w.step(climb[None])
    mem = w.memory_of(0)
    np.testing.assert_array_equal(mem.extrinsics([1, 2, 3, 4]), np.stack([up, climb[0], *climb]))
    np.testing.assert_allclose(mem.poses[1:], extrinsics_to_planar(mem.extrinsics()[1:]))

    # a level target where the start frame was: the frustum rule keeps the start frame, not the sky frame
    # that the planar rule (same ground spot and heading) takes; the DiT sees the stored cameras
    target = planar_to_extrinsics(pose + np.array([[-0.3, 0.0, 0.0], [-0.2, 0.0, 0.0]]))
    rng = copy.deepcopy(w.camera_state(0)["rng"])
    res = w.step_result(target[None])
    want = retrieve("fov", mem.extrinsics()[:5], mem.times[:5], target, 6, rng)
    planar_rule = retrieve("fov", mem.poses[:5], mem.times[:5], extrinsics_to_planar(target), 6,
                           np.random.default_rng(0))
    np.testing.assert_array_equal(res.retrieved[0], want)
    assert 0 in want and 1 not in want and 1 in planar_rule
    ctx_ext, tgt_ext, mask = spy.calls[-1]
    np.testing.assert_array_equal(ctx_ext[0][mask[0]], mem.extrinsics(want).astype(np.float32))
    np.testing.assert_array_equal(tgt_ext[0], target.astype(np.float32))

    # planar targets in a 6-DoF world: lifted to eye height, still the frustum rule on the stored cameras
    tp = _walk(pose, 2, dyaw=0.05)
    rng = copy.deepcopy(w.camera_state(0)["rng"])
    res = w.step_result(tp)
    np.testing.assert_array_equal(res.retrieved[0], retrieve("fov", mem.extrinsics()[:7], mem.times[:7], tp[0], 6, rng))


def test_six_dof_reset_observe_and_4x4(model6, start):
    frame, pose = start
    w = World(model6, num_worlds=2, retrieval="recent", context_size=3)
    E = _climb(pose, 3)
    E44 = np.concatenate([E, np.tile([[[0.0, 0.0, 0.0, 1.0]]], (3, 1, 1))], 1)       # (3, 4, 4)
    w.reset(0, frame, E44[0], seed=0)
    w.reset(1, frame, pose, seed=1)
    np.testing.assert_array_equal(w.memory_of(0).extrinsics([0])[0], E[0])
    w.observe(1, np.repeat(frame[None], 2, 0), E44[1:])
    np.testing.assert_array_equal(w.memory_of(1).extrinsics([1, 2]), E[1:])
    tp = np.zeros((2, 2, 4, 4))
    tp[1] = E44[1:]                                        # world 0 inactive: its zero rows are not read
    out = w.step(tp, active=[False, True])
    assert out[0].max() == 0 and len(w.memory_of(0)) == 1 and len(w.memory_of(1)) == 5
    np.testing.assert_array_equal(w.memory_of(1).extrinsics([3, 4]), E[1:])


def test_saved_six_dof_world_continues_the_same(ckpt6, start, tmp_path):
    from camworld.world_io import load_world, save_world

    frame, pose = start
    w = World(load_world_model(ckpt6, device="cpu"), num_worlds=1, retrieval="fov+nonadj", context_size=3)
    w.reset(0, frame, _climb(pose, 1)[0], seed=3)
    w.step(_climb(pose, 2, dz=0.2)[None])
    save_world(w, tmp_path / "w6")
    nxt = _climb(pose, 2, dz=-0.1, pitch=-0.1)[None]
    a = w.step_result(nxt)
    w2, _ = load_world(tmp_path / "w6", ckpt6)
    assert w2.cameras == "6dof"
    b = w2.step_result(nxt)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.retrieved[0], b.retrieved[0])
    np.testing.assert_array_equal(w2.memory_of(0).extrinsics(), w.memory_of(0).extrinsics())


def test_frames_per_pass_chunks_six_dof_segments(model6, start):
    frame, pose = start
    w = World(model6, num_worlds=1, context_size=3, frames_per_pass=2)
    w.reset(0, frame, pose, seed=0)
    E = _climb(pose, 5)
    assert w.step(E[None]).shape == (1, 5, 32, 32, 3)
    np.testing.assert_array_equal(w.memory_of(0).extrinsics()[1:], E)


def test_planar_worlds_refuse_six_dof_cameras(model, start, monkeypatch):
    from camworld.sim import make_scene, render
    from camworld.sim.frames import SimFrames

    frame, pose = start
    up = _climb(pose, 2)
    w = World(model, num_worlds=1, context_size=3)
    assert w.cameras == "planar"
    w.reset(0, frame, pose, seed=0)
    with pytest.raises(ValueError, match=r"target_poses\[0\]\[0\] is a 6-DoF camera .* world is planar .*6dof"):
        w.step(up[None])
    with pytest.raises(ValueError, match="6-DoF camera"):
        w.reset(0, frame, up[0])
    with pytest.raises(ValueError, match="6-DoF camera"):
        w.observe(0, frame[None], up[:1])
    with pytest.raises(ValueError, match=r"\(1, T >= 1, 3\) planar poses or \(1, T >= 1, 3, 4\)"):
        w.step(np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="orthonormal"):
        w.step(np.zeros((1, 2, 3, 4)))
    monkeypatch.setattr(model, "trained_cameras", "7dof", raising=False)
    with pytest.raises(ValueError, match="trained_cameras must be one of"):
        World(model).cameras
    monkeypatch.undo()
    tw = World(SimFrames((32, 32)), num_worlds=1, context_size=3)
    assert tw.cameras == "planar"
    scene = make_scene(1_000_003)
    tw.reset(0, frame, pose, seed=0, scene=scene)
    with pytest.raises(ValueError, match="SimFrames"):
        tw.step(up[None])
    with pytest.raises(ValueError, match="renders planar cameras"):
        tw.source.make_frames([0], [tw.memory_of(0)], [np.zeros(1, np.int64)], up[None], [None])
    level = planar_to_extrinsics(_walk(pose, 2))                  # level at eye height: planar poses, rendered
    np.testing.assert_array_equal(tw.step(level)[0], render(scene, _walk(pose, 2)[0], 32, 32)[0])


def test_checkpoint_cameras(tmp_path, model, ckpt6):
    from camworld.model.frames import checkpoint_cameras

    assert checkpoint_cameras(None) == "planar"                   # the shipped model: trained on the sim
    assert checkpoint_cameras(ckpt6) == "6dof"
    assert load_world_model(ckpt6, device="cpu").trained_cameras == "6dof"
    assert World(load_world_model(ckpt6, device="cpu")).cameras == "6dof" and World(model).cameras == "planar"
    p = model.save(tmp_path / "plain", record={"stage": "dit", "cameras": "planar", "dit": {"cameras": "6dof"}})
    assert checkpoint_cameras(p) == "planar"                      # the outer record wins
    bad = model.save(tmp_path / "bad", record={"cameras": "fisheye"})
    with pytest.raises(ValueError, match="fisheye"):
        checkpoint_cameras(bad)
    doc = json.loads(bad.with_suffix(".json").read_text())
    assert doc["record"]["cameras"] == "fisheye"


# ---------------------------------------------------------------- interpolation


def test_slerp_and_interpolation_endpoints():
    rng = np.random.default_rng(0)
    for _ in range(20):
        A = euler_to_extrinsics(*rng.uniform(-3, 3, 6))
        B = euler_to_extrinsics(*rng.uniform(-3, 3, 6))
        R = slerp(A[:, :3], B[:, :3], [0.0, 0.25, 0.5, 1.0])
        np.testing.assert_allclose(R[0], A[:, :3], atol=1e-12)
        np.testing.assert_allclose(R[-1], B[:, :3], atol=1e-12)
        np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.tile(np.eye(3), (4, 1, 1)), atol=1e-12)
        total = rotation_angle(A[:, :3], B[:, :3])
        np.testing.assert_allclose(rotation_angle(A[:, :3], R), [0.0, total / 4, total / 2, total], atol=1e-7)
        cams = interpolate_extrinsics(A, B, 4)
        np.testing.assert_array_equal(cams[-1], B)                      # the end exactly
        np.testing.assert_allclose(cams[:, :, 3], A[:, 3] + np.arange(1, 5)[:, None] / 4 * (B[:, 3] - A[:, 3]))
        np.testing.assert_allclose(rotation_angle(A[:, :3], cams[:, :, :3]), total * np.arange(1, 5) / 4, atol=1e-7)
    # the short way round: 350 degrees of yaw apart is 10 degrees
    A, B = euler_to_extrinsics(0, 0, 1.6, 0.0), euler_to_extrinsics(0, 0, 1.6, np.deg2rad(350.0))
    mid = slerp(A[:, :3], B[:, :3], [0.5])[0]
    np.testing.assert_allclose(mid, euler_to_extrinsics(0, 0, 1.6, np.deg2rad(-5.0))[:, :3], atol=1e-12)
    # half a turn (the quaternions' dot is 0) and no turn at all
    C = euler_to_extrinsics(0, 0, 1.6, np.pi)
    np.testing.assert_allclose(rotation_angle(A[:, :3], slerp(A[:, :3], C[:, :3], [0.5])), [np.pi / 2], atol=1e-7)
    np.testing.assert_allclose(slerp(A[:, :3], A[:, :3], [0.3, 0.7]), np.tile(A[:, :3], (2, 1, 1)), atol=1e-15)


def test_six_dof_bounds_and_walls():
    from camworld.sim import make_scene

    b = ActionBounds(4)
    A = euler_to_extrinsics(0, 0, 1.6, 0.0)
    far = euler_to_extrinsics(30, 40, 10, 2.0, 1.0, 0.5)
    end, clipped = approach_extrinsics(A, far, b)
    assert clipped
    np.testing.assert_allclose(np.linalg.norm(end[:, 3] - A[:, 3]), b.max_move)
    d, D = end[:, 3] - A[:, 3], far[:, 3] - A[:, 3]                      # straight toward the target
    np.testing.assert_allclose(d / np.linalg.norm(d), D / np.linalg.norm(D))
    np.testing.assert_allclose(np.rad2deg(rotation_angle(A[:, :3], end[:, :3])), b.max_turn_deg)
    near = euler_to_extrinsics(0.3, 0.2, 1.9, 0.05, 0.1, -0.05)
    end, clipped = approach_extrinsics(A, near, b)
    assert not clipped and np.array_equal(end, near)
    # walls: a move into a wall stops where it is (height too) and keeps turning
    scene = make_scene(5)
    rng = np.random.default_rng(0)
    for _ in range(500):
        x, y, yaw = scene.sample_free_pose(rng)
        d = np.array([np.cos(yaw), np.sin(yaw)])
        if not scene.segment_free(np.array([x, y]), np.array([x, y]) + b.max_move * d, 0.3):
            break
    else:
        pytest.fail("no pose near a wall")
    E0 = euler_to_extrinsics(x, y, 1.6, yaw)
    E1 = euler_to_extrinsics(x + b.max_move * d[0], y + b.max_move * d[1], 2.2, yaw + 0.2, 0.1)
    cams, collided = segment_extrinsics(E0, E1, 4, scene)
    assert collided and scene.is_free(cams[:, :2, 3], clearance=0.29).all()
    np.testing.assert_array_equal(cams[-1, :, :3], E1[:, :3])            # it still turned all the way
    free, hit = segment_extrinsics(E0, E1, 4)
    assert not hit and np.array_equal(free[-1], E1)


# ---------------------------------------------------------------- the env on a model marked 6-DoF


def _env(ckpt, **kw):
    import gymnasium as gym

    import camworld  # noqa: F401  (registers the ids)

    return gym.make("ContextAsMemory-v0", checkpoint=ckpt, device="cpu", frames_per_step=2, context_size=3,
                    **kw).unwrapped


def test_env_six_dof_pose_actions(ckpt6):
    from gymnasium.utils.env_checker import check_env

    env = _env(ckpt6, action_type="pose")
    assert env.six_dof and env.action_space.shape == (6,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_env(env)
    image = np.full((32, 32, 3), 120, np.uint8)
    start = (1.0, 2.0, 1.0, 0.3, -0.2, 0.1)                          # a 6-DoF start from an image
    _, info = env.reset(seed=0, options={"image": image, "pose": start})
    np.testing.assert_allclose(info["extrinsics"], euler_to_extrinsics(*start))
    np.testing.assert_allclose(info["pose"], extrinsics_to_planar(euler_to_extrinsics(*start)))
    assert info["frame_extrinsics"].shape == (1, 3, 4)
    target = np.array([1.3, 2.1, 1.2, 0.32, -0.15, 0.1])           # within one step: reached exactly
    _, _, _, _, info = env.step(target.astype(np.float32))
    want = euler_to_extrinsics(*target.astype(np.float32).astype(np.float64))
    assert not info["pose_clipped"] and info["frame_extrinsics"].shape == (2, 3, 4)
    np.testing.assert_array_equal(info["frame_extrinsics"][-1], want)
    np.testing.assert_array_equal(info["extrinsics"], want)
    np.testing.assert_allclose(info["poses"], extrinsics_to_planar(info["frame_extrinsics"]))
    mem = env.backend.memories[0]
    np.testing.assert_array_equal(mem.extrinsics()[-2:], info["frame_extrinsics"])
    before = info["extrinsics"]
    _, _, _, _, info = env.step(np.array([500, -500, 300, 3.0, 1.5, -3.0], np.float32))   # far: one step's worth
    assert info["pose_clipped"] and not info["collided"]
    np.testing.assert_allclose(np.linalg.norm(info["extrinsics"][:, 3] - before[:, 3]), env.bounds.max_move)
    np.testing.assert_allclose(np.rad2deg(rotation_angle(before[:, :3], info["extrinsics"][:, :3])),
                               env.bounds.max_turn_deg)
    with pytest.raises(ValueError, match=r"shape \(6,\).*append z = 1.6"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(6, np.nan))
    with pytest.raises(ValueError, match="sim renders level cameras"):
        env.reset(seed=0, options={"scene_seed": 3, "pose": start})
    _, info = env.reset(seed=0, options={"scene_seed": 3})            # a sim-scene start: planar, walls kept
    np.testing.assert_array_equal(info["extrinsics"], planar_to_extrinsics(info["pose"]))
    env.close()


def test_env_on_six_dof_model_keeps_discrete_planar_and_planar_worlds_refuse(ckpt6, tiny_checkpoint):
    env = _env(ckpt6)                                                 # discrete actions stay planar
    assert env.cameras == "6dof" and not env.six_dof and env.action_space.n == 7
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(1)
    np.testing.assert_array_equal(info["frame_extrinsics"], planar_to_extrinsics(info["poses"]))
    with pytest.raises(ValueError, match="6-DoF start needs action_type='pose'"):
        env.reset(seed=0, options={"image": np.zeros((32, 32, 3), np.uint8), "pose": (0, 0, 2.0, 0, 0.3, 0)})
    env.close()
    env = _env(tiny_checkpoint, action_type="pose")                  # a model trained on planar cameras
    assert env.cameras == "planar" and env.action_space.shape == (3,)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="6-DoF pose action .* trained on 6-DoF cameras"):
        env.step(np.zeros(6))
    env.close()


def test_vector_env_steps_six_dof_pose_actions_in_one_batch(ckpt6):
    import gymnasium as gym

    import camworld  # noqa: F401

    venv = gym.make_vec("ContextAsMemory-v0", num_envs=2, checkpoint=ckpt6, device="cpu", frames_per_step=2,
                        context_size=3, action_type="pose")
    assert venv.single_action_space.shape == (6,)
    _, info = venv.reset(seed=0, options={"image": np.full((32, 32, 3), 90, np.uint8)})
    start = info["extrinsics"]                                              # (2, 3, 4): level at the origin
    act = np.array([[0.2, 0.0, 1.7, 0.0, 0.05, 0.0], [0.0, -0.3, 1.4, -0.04, -0.05, 0.02]], np.float32)
    _, _, _, _, info = venv.step(act)
    assert info["frame_extrinsics"].shape == (2, 2, 3, 4)
    for i in range(2):
        np.testing.assert_array_equal(info["extrinsics"][i], euler_to_extrinsics(*act[i].astype(np.float64)))
        assert not np.allclose(info["extrinsics"][i], start[i])
    venv.close()


def test_multi_agent_env_steps_six_dof_pose_actions(ckpt6):
    from camworld.envs.multi_agent import MultiAgentCamWorld

    env = MultiAgentCamWorld(n_agents=2, backend="model", checkpoint=ckpt6, device="cpu", frames_per_step=2,
                             context_size=3, action_type="pose", max_cycles=3)
    _, infos = env.reset(seed=0)
    acts = {}
    for a in env.agents:
        x, y, z = infos[a]["extrinsics"][:, 3]
        acts[a] = np.array([x + 0.1, y, z + 0.05, 0.0, 0.05, 0.0], np.float32)
    _, _, _, _, infos = env.step(acts)
    for a in env.agents:
        assert infos[a]["frame_extrinsics"].shape == (2, 3, 4)
        np.testing.assert_allclose(infos[a]["extrinsics"][:, 3][2], acts[a][2], atol=1e-5)
    env.close()
