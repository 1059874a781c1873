"""World (Algorithm 2) on a tiny random model: shapes, memory growth, latent cache, determinism, sharing."""

import numpy as np
import pytest
import torch

from camworld.model import WorldModel, preset
from camworld.sim import make_scene, render
from camworld.world import World, load_world_model


def _targets(pose, n, B=1, dyaw=0.2):
    t = np.repeat(np.asarray(pose, float)[None], n, 0)
    t[:, 2] += dyaw * np.arange(1, n + 1)
    return np.repeat(t[None], B, 0)


def test_step_shapes_memory_and_retrieval(model, start):
    w = World(model, num_worlds=2, retrieval="fov+nonadj", context_size=4)
    for i in range(2):
        w.reset(i, start[0], start[1], prompt="a street", seed=i)
    out = w.step(_targets(start[1], 3, B=2))  # 3 frames: two passes of 2 and 1
    assert out.shape == (2, 3, 32, 32, 3) and out.dtype == np.uint8
    assert len(w.memories[0]) == 4 and len(w.memories[1]) == 4
    assert w.last_retrieved[0][-1] == 2  # newest frame of world 0 was in the last chunk's context


def test_latents_encoded_once_generated_ones_kept(model, start, monkeypatch):
    w = World(model, num_worlds=1, retrieval="recent", context_size=8)
    w.reset(0, start[0], start[1], seed=0)
    calls = []
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda f: calls.append(len(f)) or real(f))
    for _ in range(3):
        w.step(_targets(start[1], 2))
    assert calls == [1]  # only the real first frame was ever encoded
    assert w.memories[0].has_latents.all()


def test_same_seed_same_frames_and_inactive_worlds_untouched(model, start):
    def run(seed, active=None):
        w = World(model, num_worlds=2, retrieval="coverage", context_size=4)
        for i in range(2):
            w.reset(i, start[0], start[1], seed=seed + i)
        return w, w.step(_targets(start[1], 2, B=2), active=active)

    _, a = run(5)
    _, b = run(5)
    _, c = run(6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    w, d = run(5, active=[False, True])
    assert d[0].max() == 0 and np.array_equal(d[1], a[1])  # world 1 does not depend on world 0 being stepped
    assert len(w.memories[0]) == 1


def test_shared_memory_lets_one_camera_retrieve_anothers_frames(model, start):
    w = World(model, num_worlds=2, retrieval="fov", context_size=6, shared_memory=True)
    w.reset(0, start[0], start[1], seed=0)
    w.reset(1, start[0], start[1], seed=1)
    w.step(_targets(start[1], 2, B=2, dyaw=0.05))
    src = w.memories[0].sources
    assert len(w.memories) == 1 and len(w.memories[0]) == 6
    w.step(_targets(start[1], 2, B=2, dyaw=0.05))
    used = set(src[w.last_retrieved[1]].tolist()) if len(src) else set()
    assert 0 in set(w.memories[0].sources[w.last_retrieved[1]].tolist())  # camera 1 saw camera 0's frames
    assert w.last_retrieved[1][-1] != w.last_retrieved[0][-1]  # each camera keeps its own newest frame
    del used


def test_observe_and_append_false(model, start):
    w = World(model, num_worlds=1, context_size=3)
    w.reset(0, start[0], start[1], seed=0)
    out = w.step(_targets(start[1], 2), append=False)
    assert len(w.memories[0]) == 1
    w.observe(0, out[0], _targets(start[1], 2)[0])
    assert len(w.memories[0]) == 3


def test_errors(model, start):
    with pytest.raises(ValueError, match="unknown retrieval"):
        World(model, retrieval="telepathy")
    w = World(model, num_worlds=1)
    with pytest.raises(RuntimeError, match="never reset"):
        w.step(_targets(start[1], 2))
    with pytest.raises(ValueError, match="uint8"):
        w.reset(0, start[0].astype(np.float32), start[1])
    w.reset(0, start[0], start[1])
    with pytest.raises(ValueError, match=r"\(1, T >= 1, 3\)"):
        w.step(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match=r"T >= 1"):
        w.step(np.zeros((1, 0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        w.step(np.full((1, 2, 3), np.nan))


def test_load_world_model_caches(tmp_path, model):
    path = model.save(tmp_path / "tiny")
    a = load_world_model(path, device="cpu")
    b = load_world_model(path, device="cpu")
    assert a is b
    with pytest.raises(FileNotFoundError):
        load_world_model(tmp_path / "missing.safetensors")


def test_sim_frame_source_renders_the_scene_with_the_same_bookkeeping(start):
    """World(SimFrames(...)): the twin's frames are the sim's renders; memory and retrieval as the learned world."""
    from camworld.sim import make_scene, render
    from camworld.sim.frames import SimFrames

    scene = make_scene(1_000_003)
    frame, pose = start
    w = World(SimFrames((32, 32)), num_worlds=1, context_size=3)
    with pytest.raises(ValueError, match="reset needs scene="):
        w.reset(0, frame, pose, seed=0)
    w.reset(0, frame, pose, seed=0, scene=scene)
    targets = pose + np.array([[0.0, 0.0, 0.05 * (t + 1)] for t in range(5)])
    res = w.step_result(targets[None])
    np.testing.assert_array_equal(res.frames[0], render(scene, targets, 32, 32)[0])
    assert res.retrieved[0][-1] == 0 and len(w.memories[0]) == 6 and not w.memories[0].has_latents.any()
    assert w.model is None
    with pytest.raises(ValueError, match="only apply to the learned world"):
        World(SimFrames((32, 32)), sample_steps=2)

