"""camworld.memory.MemoryBank: growth, capacity (spill to disk), latent cache, save/load."""

import os
import zipfile

import numpy as np
import pytest

from camworld.memory import MAGIC, MemoryBank

FS = (8, 8, 3)


def _frames(rng, T):
    return rng.integers(0, 256, (T,) + FS, dtype=np.uint8)


def _poses(rng, T):
    return rng.normal(size=(T, 3))


def _filled(capacity=1000, n=50, seed=0, **kw):
    rng = np.random.default_rng(seed)
    bank = MemoryBank(FS, capacity=capacity, **kw)
    frames, poses = _frames(rng, n), _poses(rng, n)
    for j in range(0, n, 7):
        bank.append(frames[j:j + 7], poses[j:j + 7], source=j % 3)
    return bank, frames, poses


def test_append_growth_and_views():
    bank, frames, poses = _filled(n=1000)
    assert len(bank) == 1000
    assert np.array_equal(bank.frames(np.arange(1000)), frames)
    assert np.array_equal(bank.frames(5), frames[5])
    assert np.allclose(bank.poses, poses)
    assert bank.times.tolist() == list(range(1000))                  # default: a step counter
    assert bank.sources[:7].tolist() == [0] * 7 and bank.sources[7] == 1
    assert bank.extrinsics([0, 1]).shape == (2, 3, 4)
    with pytest.raises(ValueError):
        bank.poses[0, 0] = 1.0                                          # read-only view
    # geometric growth: the pose buffer is reallocated O(log n) times, not per append
    sizes = set()
    b = MemoryBank(FS)
    for _ in range(2000):
        b.append(np.zeros(FS, np.uint8), np.zeros(3))
        sizes.add(len(b._poses))
    assert len(sizes) <= 12


def test_append_validation():
    bank = MemoryBank(FS)
    with pytest.raises(ValueError, match="frames must be uint8"):
        bank.append(np.zeros((2,) + FS, np.float32), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="frames must be uint8"):
        bank.append(np.zeros((2, 4, 4, 3), np.uint8), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="poses must be"):
        bank.append(np.zeros((2,) + FS, np.uint8), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        bank.append(np.zeros((1,) + FS, np.uint8), [[0, np.nan, 0]])
    with pytest.raises(ValueError, match="times must be"):
        bank.append(np.zeros((2,) + FS, np.uint8), np.zeros((2, 3)), times=[0])
    with pytest.raises(IndexError):
        bank.frames([0])
    assert len(bank) == 0


def test_capacity_spills_to_disk_and_keeps_indices():
    bank, frames, poses = _filled(capacity=10, n=200)
    assert len(bank) == 200
    assert bank.spilled >= 190 - 10 and len(bank) - bank.spilled <= 10   # RAM holds at most capacity
    assert np.array_equal(bank.frames(np.arange(200)), frames)           # every index still readable
    assert np.array_equal(bank.frames([3, 199, 0]), frames[[3, 199, 0]])
    tmp = bank._tmp
    assert tmp is not None and os.path.isdir(tmp)
    bank.clear()
    assert len(bank) == 0 and not os.path.exists(tmp)                   # spill files removed


def test_latent_cache():
    bank, _, _ = _filled(capacity=16, n=60)
    lat, have = bank.get_latents([0, 1, 59])
    assert lat == [None, None, None] and not have.any()
    z = np.arange(3 * 4 * 2 * 2, dtype=np.float32).reshape(3, 4, 2, 2)
    bank.set_latents([0, 30, 59], z)                                     # 0 is on disk, 59 in RAM
    lat, have = bank.get_latents([0, 1, 30, 59])
    assert have.tolist() == [True, False, True, True]
    assert lat[1] is None and np.array_equal(lat[0], z[0]) and np.array_equal(lat[3], z[2])
    assert bank.latent_shape == (4, 2, 2)
    with pytest.raises(ValueError, match="latent"):
        bank.set_latents([2], np.zeros((1, 3, 2, 2), np.float32))
    bank.append(_frames(np.random.default_rng(1), 40), np.zeros((40, 3)))   # spills latents too
    lat, have = bank.get_latents([30, 99])
    assert have.tolist() == [True, False] and np.array_equal(lat[0], z[1])
    torch = pytest.importorskip("torch")
    bank.set_latents([99], torch.ones(1, 4, 2, 2))
    assert bank.get_latents([99])[1].all()


def test_save_load_round_trip(tmp_path):
    bank, frames, poses = _filled(capacity=12, n=80)
    bank.meta.update(prompt="a red room", seed=3)
    bank.set_latents([1, 70], np.ones((2, 5), np.float32) * [[1], [2]])
    path = tmp_path / "mem.npz"
    bank.save(path)
    assert not [p for p in os.listdir(tmp_path) if p != "mem.npz"]      # no temp file left behind
    back = MemoryBank.load(path)
    assert len(back) == 80 and back.frame_shape == FS and back.capacity == 12
    assert np.array_equal(back.frames(np.arange(80)), frames)
    assert np.array_equal(back.poses, bank.poses) and np.array_equal(back.times, bank.times)
    assert np.array_equal(back.sources, bank.sources)
    assert back.meta == {"prompt": "a red room", "seed": 3}
    lat, have = back.get_latents([1, 2, 70])
    assert have.tolist() == [True, False, True] and lat[2].tolist() == [2.0] * 5
    z = np.load(path, allow_pickle=False)                                # a plain .npz, no pickle
    assert z["frames"].shape == (80,) + FS
    empty = MemoryBank(FS)
    empty.save(tmp_path / "empty.npz")
    assert len(MemoryBank.load(tmp_path / "empty.npz")) == 0


def test_load_rejects_truncated_and_foreign_files(tmp_path):
    bank, _, _ = _filled(n=30)
    path = tmp_path / "mem.npz"
    bank.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        MemoryBank.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "foreign.npz", frames=np.zeros(3))
    with pytest.raises(ValueError, match="not a camworld MemoryBank"):
        MemoryBank.load(tmp_path / "foreign.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a camworld MemoryBank"):
        MemoryBank.load(tmp_path / "text.npz")
    with zipfile.ZipFile(tmp_path / "future.npz", "w") as zf:
        zf.writestr("header.json", '{"magic": "%s", "version": 99}' % MAGIC)
    with pytest.raises(ValueError, match="version 99"):
        MemoryBank.load(tmp_path / "future.npz")
    with pytest.raises(ValueError, match="JSON"):
        bank.meta["bad"] = object()
        bank.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------------- full extrinsics (6-DoF) and old files


def _six_dof(rng, T):
    from camworld import geometry

    return geometry.euler_to_extrinsics(*rng.uniform(-5, 5, (2, T)), rng.uniform(0, 3, T), rng.uniform(-3, 3, T),
                                        rng.uniform(-1.2, 1.2, T), rng.uniform(-0.5, 0.5, T))


def test_extrinsics_stored_for_every_frame():
    from camworld import geometry

    rng = np.random.default_rng(0)
    bank = MemoryBank(FS)
    planar, full = _poses(rng, 5), _six_dof(rng, 4)
    bank.append(_frames(rng, 5), planar)
    bank.append(_frames(rng, 4), full)
    bank.append(_frames(rng, 1), geometry.to_homogeneous(full[:1]))          # (4, 4) works too
    E = bank.extrinsics()
    assert E.shape == (10, 3, 4) and not E.flags.writeable
    np.testing.assert_array_equal(E[:5], geometry.planar_to_extrinsics(planar))   # planar: derived
    np.testing.assert_array_equal(E[5:9], full)                                  # 6-DoF: as given
    np.testing.assert_array_equal(bank.poses[:5], planar)
    np.testing.assert_allclose(bank.poses[5:9], geometry.extrinsics_to_planar(full))  # position and heading
    np.testing.assert_array_equal(bank.extrinsics([9, 5]), full[[0, 0]])
    bad = full[:1].copy()
    bad[0, :, 0] *= 2                                                              # not a rotation
    with pytest.raises(ValueError, match="orthonormal"):
        bank.append(_frames(rng, 1), bad)
    with pytest.raises(ValueError, match=r"\(2, 3\) planar poses or \(2, 3, 4\) extrinsics"):
        bank.append(_frames(rng, 2), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="disagree"):
        bank.append(_frames(rng, 1), planar[:1] + 1.0, extrinsics=geometry.planar_to_extrinsics(planar[:1]))
    assert len(bank) == 10


def test_save_load_keeps_extrinsics_and_the_index(tmp_path):
    rng = np.random.default_rng(1)
    bank = MemoryBank(FS, capacity=6)
    bank.append(_frames(rng, 7), _poses(rng, 7))
    bank.append(_frames(rng, 6), _six_dof(rng, 6))
    bank.save(tmp_path / "m.npz")
    back = MemoryBank.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.extrinsics(), bank.extrinsics())
    np.testing.assert_array_equal(back.poses, bank.poses)
    assert back.index.n == 13 and back.index.holds(np.arange(13), bank.index.keys_of(
        bank.poses[:, :2], bank.poses[:, 2], np.abs(bank.extrinsics()[:, 2, 2]) > 0.5)).all()


def _rewrite(src, dst, version: int, drop=(), change=None):
    """Copy a bank file, with header version ``version``, members ``drop`` left out, ``change`` {name: array}."""
    import io
    import json

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            name = item.filename
            if name[:-4] in drop:
                continue
            data = zin.read(name)
            if name == "header.json":
                data = json.dumps({**json.loads(data), "version": version}).encode()
            elif change and name[:-4] in change:
                buf = io.BytesIO()
                np.save(buf, change[name[:-4]])
                data = buf.getvalue()
            zout.writestr(name, data)


def test_reads_version_1_files(tmp_path):
    """A file in the layout written before extrinsics were stored (version 1: planar poses only)."""
    from camworld import geometry

    bank, frames, poses = _filled(capacity=20, n=40)
    bank.set_latents([3], np.ones((1, 2), np.float32))
    bank.save(tmp_path / "v2.npz")
    _rewrite(tmp_path / "v2.npz", tmp_path / "v1.npz", 1, drop=("extrinsics",))
    with zipfile.ZipFile(tmp_path / "v1.npz") as zf:
        assert "extrinsics.npy" not in zf.namelist()
    old = MemoryBank.load(tmp_path / "v1.npz")
    np.testing.assert_array_equal(old.poses, poses)
    np.testing.assert_array_equal(old.extrinsics(), geometry.planar_to_extrinsics(poses))
    np.testing.assert_array_equal(old.frames(np.arange(40)), frames)
    assert old.get_latents([3])[1].all()
    _rewrite(tmp_path / "v2.npz", tmp_path / "v2cut.npz", 2, drop=("extrinsics",))
    with pytest.raises(ValueError, match="lacks member"):
        MemoryBank.load(tmp_path / "v2cut.npz")                               # version 2 needs them


def test_load_rejects_extrinsics_that_disagree_with_the_poses(tmp_path):
    from camworld import geometry

    bank, _, poses = _filled(n=10)
    bank.save(tmp_path / "m.npz")
    E = geometry.planar_to_extrinsics(poses)
    E[4, :2, 3] += 1.0                                                        # frame 4 moved
    _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", 2, change={"extrinsics": E})
    with pytest.raises(ValueError, match=r"disagree at frames \[4\]"):
        MemoryBank.load(tmp_path / "bad.npz")


def test_observed_flags_are_kept_copied_and_saved(tmp_path):
    """Frames of the real world carry observed=True (the learned world pastes them first); a file from
    before the flag existed (version 2) loads with every frame unobserved."""
    rng = np.random.default_rng(1)
    bank = MemoryBank(FS, capacity=4)
    bank.append(_frames(rng, 3), _poses(rng, 3), observed=True)
    bank.append(_frames(rng, 5), _poses(rng, 5))                               # generated: the default
    bank.append(_frames(rng, 2), _poses(rng, 2), observed=np.array([True, False]))
    want = [True] * 3 + [False] * 5 + [True, False]
    assert bank.observed.tolist() == want and not bank.observed.flags.writeable
    with pytest.raises(ValueError, match="observed"):
        bank.append(_frames(rng, 1), _poses(rng, 1), observed=np.array([1.5]))
    bank.save(tmp_path / "v3.npz")
    assert MemoryBank.load(tmp_path / "v3.npz").observed.tolist() == want   # spilled frames too (capacity 4)
    _rewrite(tmp_path / "v3.npz", tmp_path / "v2.npz", 2, drop=("observed",))
    assert not MemoryBank.load(tmp_path / "v2.npz").observed.any()


def test_world_marks_reset_and_observed_frames_and_not_generated_ones():
    from camworld import sim
    from camworld.sim.frames import SimFrames
    from camworld.world import World

    scene = sim.make_scene(7)
    poses = sim.random_trajectory(scene, 6, np.random.default_rng(0))
    rgb, _ = sim.render(scene, poses, 32, 32)
    w = World(SimFrames((32, 32)), num_worlds=1, context_size=3)
    w.reset(0, rgb[0], poses[0], scene=scene)
    w.step(poses[None, 1:3])
    w.observe(0, rgb[3:5], poses[3:5])
    w.step(poses[None, 5:6])
    assert w.memory_of(0).observed.tolist() == [True, False, False, True, True, False]
