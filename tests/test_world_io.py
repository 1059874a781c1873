"""camworld.world_io: save/load round trips reproduce the next frames; atomic saves; clear errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from camworld.memory import MemoryBank
from camworld.model import WorldModel, preset
from camworld.sim import make_scene, render
from camworld.world import World
from camworld.world_io import (FORMAT, MANIFEST, WORLD_ATTRIBUTES, camera_state, load_world, load_world_into,
                               read_manifest, save_world)


def _targets(pose, step, B=2):
    """(B, 2, 3): camera b turns a little each step, from its own yaw offset."""
    t = np.repeat(np.asarray(pose, float)[None, None], B, 0).repeat(2, 1)
    t[:, :, 2] += 0.15 * step + 0.05 * np.arange(2)[None] + 0.6 * np.arange(B)[:, None]
    return t


def _explored(model, start, shared: bool, steps: int = 3) -> World:
    w = World(model, num_worlds=2, retrieval="coverage", context_size=4, shared_memory=shared)
    for i in range(2):
        w.reset(i, start[0], start[1], prompt=f"camera {i}", seed=10 + i)
    for s in range(steps):
        w.step(_targets(start[1], s))
    return w


@pytest.mark.parametrize("shared", [True, False])
def test_round_trip_reproduces_the_next_frames(model, start, tmp_path, shared):
    w = _explored(model, start, shared)
    save_world(w, tmp_path / "w", extra={"scene_seed": 1_000_003, "note": "kitchen"})
    expected = w.step(_targets(start[1], 3))                      # the original goes on
    w2, extra = load_world(tmp_path / "w", model)
    got = w2.step(_targets(start[1], 3))                          # the loaded copy takes the same step
    np.testing.assert_array_equal(got, expected)
    assert extra == {"scene_seed": 1_000_003, "note": "kitchen"}
    assert w2.shared_memory == shared and w2.prompts == w.prompts
    for a, b in zip(w.memories, w2.memories):
        np.testing.assert_array_equal(a.sources, b.sources)
        np.testing.assert_array_equal(a.poses, b.poses)
        np.testing.assert_array_equal(a.frames(np.arange(len(a))), b.frames(np.arange(len(b))))
    for i in range(2):
        np.testing.assert_array_equal(w.last_retrieved[i], w2.last_retrieved[i])


def test_world_io_knows_every_world_attribute(model):
    """A new piece of World state must be taught to world_io (save_world refuses unknown state)."""
    assert set(vars(World(model))) == set(WORLD_ATTRIBUTES)


def test_one_world_of_many_into_a_vector_slot(model, start, tmp_path):
    w = _explored(model, start, shared=False)
    save_world(w, tmp_path / "one", worlds=[1])
    assert read_manifest(tmp_path / "one")["world"]["num_worlds"] == 1
    expected = w.step(_targets(start[1], 3))[1]
    target = World(model, num_worlds=3, retrieval="coverage", context_size=4)
    for i in range(3):
        target.reset(i, start[0], start[1], seed=99)
    load_world_into(target, 2, tmp_path / "one")
    frame, pose = camera_state(target, 2)
    np.testing.assert_array_equal(pose, w.memories[1].poses[-3])                  # before the step above
    got = target.step(_targets(start[1], 3, B=3)[[0, 0, 1]], active=[False, False, True])[2]
    np.testing.assert_array_equal(got, expected)
    save_world(_explored(model, start, shared=True, steps=1), tmp_path / "sh")
    with pytest.raises(ValueError, match="shared world of 2 cameras"):
        load_world_into(target, 0, tmp_path / "sh")


def test_failed_save_keeps_the_previous_one(model, start, tmp_path, monkeypatch):
    w = _explored(model, start, shared=True, steps=1)
    save_world(w, tmp_path / "w")
    n_saved = len(w.memories[0])
    w.step(_targets(start[1], 1))

    def disk_full(self, path, durable=False):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a bank")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MemoryBank, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_world(w, tmp_path / "w")
    monkeypatch.undo()
    assert len(list((tmp_path / "w").glob("memory-*.npz"))) == 1         # the failed write left nothing behind
    w2, _ = load_world(tmp_path / "w", model)
    assert len(w2.memories[0]) == n_saved
    save_world(w, tmp_path / "w")                                          # a later save replaces it, old bank gone
    assert len(list((tmp_path / "w").glob("memory-*.npz"))) == 1
    assert len(load_world(tmp_path / "w", model)[0].memories[0]) == len(w.memories[0])


def test_clear_errors_for_truncated_and_foreign_files(model, start, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_world(tmp_path / "missing", model)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a saved camworld world"):
        load_world(tmp_path / "notes.txt", model)
    bank = MemoryBank(frame_shape=(32, 32, 3))
    bank.append(start[0], start[1])
    bank.save(tmp_path / "bank.npz")
    with pytest.raises(ValueError, match="single MemoryBank file"):
        load_world(tmp_path / "bank.npz", model)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.csv").write_text("1,2")
    with pytest.raises(ValueError, match="no world.json"):
        load_world(tmp_path / "foreign", model)
    with pytest.raises(ValueError, match="not a saved world; refusing"):
        save_world(_explored(model, start, shared=True, steps=0), tmp_path / "foreign")
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_world(_explored(model, start, shared=True, steps=0), tmp_path / "x", extra={"bad": object()})

    w = _explored(model, start, shared=True, steps=1)
    save_world(w, tmp_path / "w")
    m = tmp_path / "w" / MANIFEST
    good = m.read_bytes()
    m.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="damaged or truncated"):
        load_world(tmp_path / "w", model)
    doc = json.loads(good)
    m.write_text(json.dumps({**doc, "format": "something-else"}))
    with pytest.raises(ValueError, match=f"expected '{FORMAT}'"):
        load_world(tmp_path / "w", model)
    m.write_text(json.dumps({**doc, "model": {**doc["model"], "frame_size": 64}}))
    with pytest.raises(ValueError, match="64x64 frames"):
        load_world(tmp_path / "w", model)
    m.write_bytes(good)
    bank_file = next((tmp_path / "w").glob("memory-*.npz"))
    data = bank_file.read_bytes()
    bank_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="memory bank memory-0-.*cannot be read"):
        load_world(tmp_path / "w", model)
    bank_file.unlink()
    with pytest.raises(ValueError, match="incomplete"):
        load_world(tmp_path / "w", model)


def test_another_vae_drops_cached_latents_with_a_warning(model, start, tmp_path):
    save_world(_explored(model, start, shared=True, steps=2), tmp_path / "w")
    torch.manual_seed(1)
    other = WorldModel(preset("tiny")).eval()
    with pytest.warns(UserWarning, match="another VAE"):
        w2, _ = load_world(tmp_path / "w", other)
    assert not w2.memories[0].has_latents.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = w2.step(_targets(start[1], 2))                      # re-encodes what it retrieves
    assert out.shape == (2, 2, 32, 32, 3)


def _to_format_1(folder):
    """Turn a saved world into the layout written before full extrinsics: manifest version 1, and
    MemoryBank files of version 1 (header version 1, no extrinsics member)."""
    import zipfile

    man = json.loads((folder / MANIFEST).read_bytes())
    (folder / MANIFEST).write_text(json.dumps({**man, "version": 1}))
    for name in man["banks"]:
        path = folder / name
        members = {}
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                members[member] = zf.read(member)
        header = json.loads(members.pop("header.json"))
        del members["extrinsics.npy"]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("header.json", json.dumps({**header, "version": 1}))
            for member, data in members.items():
                zf.writestr(member, data)


def test_reads_worlds_saved_before_extrinsics(model, start, tmp_path):
    from camworld.geometry import planar_to_extrinsics

    w = _explored(model, start, shared=False)
    save_world(w, tmp_path / "w")
    assert read_manifest(tmp_path / "w")["version"] == 2
    expected = w.step(_targets(start[1], 3))
    _to_format_1(tmp_path / "w")
    w2, _ = load_world(tmp_path / "w", model)
    np.testing.assert_array_equal(w2.step(_targets(start[1], 3)), expected)      # the same next frames
    for a, b in zip(w.memories, w2.memories):                                    # both took that step
        np.testing.assert_array_equal(b.poses, a.poses)
        np.testing.assert_array_equal(b.extrinsics(), planar_to_extrinsics(a.poses))
    m = tmp_path / "w" / MANIFEST
    m.write_text(json.dumps({**json.loads(m.read_bytes()), "version": 3}))
    with pytest.raises(ValueError, match="format version 3; this camworld reads versions 1, 2"):
        load_world(tmp_path / "w", model)
