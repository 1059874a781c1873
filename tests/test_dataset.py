"""Tests for camworld.sim.dataset (the sim export) and the camworld.posed-videos format it writes: round trip,
resuming after an interruption, the revisit paths, and a data set written by hand by "another tool"."""

import json

import numpy as np
import pytest

from camworld import geometry as g
from camworld import sim
from camworld.recorded import DataError, open_dataset, read_video, schema
from camworld.sim import dataset


def test_export_round_trip(tmp_path):
    dirs = dataset.export(tmp_path, scenes=2, frames=80, size=32, depth=True, seed=5, progress=False)
    assert len(dirs) == 2
    doc = json.loads((tmp_path / "dataset.json").read_text())
    assert doc["schema"] == "camworld.posed-videos" and doc["version"] == schema.VERSION == 2
    assert doc["videos"] == [{"path": "videos/000000", "split": "train"}, {"path": "videos/000001", "split": "train"}]
    assert doc["writer"]["settings"]["frames"] == 80
    assert "cameras.npz" in (tmp_path / "README.md").read_text()
    index = open_dataset(tmp_path, progress=False)
    assert [v.frames for v in index.videos] == [80, 80] and index.planar and not index.skipped
    v = read_video(dirs[1])
    assert v["frames"].shape == (80, 32, 32, 3) and v["frames"].dtype == np.uint8
    assert v["intrinsics"].shape == (80, 3, 3) and v["c2w"].shape == (80, 4, 4) and v["depth"].shape == (80, 32, 32)
    np.testing.assert_allclose(v["timestamps"], np.arange(80) / 30)
    np.testing.assert_allclose(v["intrinsics"][0], g.intrinsics(32, 32))
    poses = np.load(dirs[1] / "cameras.npz")["poses"]       # an extra array: the sim's planar poses
    np.testing.assert_allclose(v["c2w"][:, :3], g.planar_to_extrinsics(poses))
    np.testing.assert_allclose(v["c2w"][:, 3], np.tile([0, 0, 0, 1.0], (80, 1)))
    assert v["meta"]["seed"] == 6 and v["meta"]["style"] == sim.STYLES[6 % len(sim.STYLES)]
    assert [s["start"] for s in v["captions"]["segments"]] == [0, 77]
    assert all(len(s["text"]) > 10 for s in v["captions"]["segments"])
    # the stored cameras reproduce the stored frames (mp4 is lossy) and depth (exact)
    scene = sim.make_scene(v["meta"]["seed"], v["meta"]["style"])
    rgb, depth = sim.render(scene, poses, 32, 32)
    np.testing.assert_array_equal(depth, v["depth"])
    mse = np.mean((rgb.astype(float) - v["frames"]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 22


def test_image_frames_are_lossless_and_heldout_videos_are_marked(tmp_path):
    dataset.export(tmp_path, scenes=1, frames=12, size=32, seed=2, heldout=1, image_frames=True, progress=False)
    index = open_dataset(tmp_path, progress=False)
    assert [(v.path, v.split, v.source) for v in index.videos] == [("videos/000000", "train", "images"),
                                                                   ("videos/heldout-000000", "heldout", "images")]
    v = read_video(tmp_path / "videos" / "heldout-000000")
    assert v["meta"]["seed"] == sim.EVAL_SEED_OFFSET + 2 and v["meta"]["heldout"]
    scene = sim.make_scene(v["meta"]["seed"])
    rgb, _ = sim.render(scene, np.load(tmp_path / "videos/heldout-000000/cameras.npz")["poses"], 32, 32)
    np.testing.assert_array_equal(v["frames"], rgb)


def test_revisit_paths_return_to_earlier_poses(tmp_path):
    from camworld.train.recorded import revisit_frames

    dataset.export(tmp_path / "r", scenes=1, frames=240, size=16, seed=3, paths="revisits", progress=False)
    dataset.export(tmp_path / "w", scenes=1, frames=240, size=16, seed=3, paths="random", progress=False)
    rv = read_video(tmp_path / "r" / "videos" / "000000")
    np.testing.assert_allclose(np.diff(rv["timestamps"]), 4 / 30)           # model frame rate, 7.5 fps
    share = revisit_frames(rv["c2w"], 0.5, 17.0).mean()
    walk = read_video(tmp_path / "w" / "videos" / "000000")
    assert share > 0.2 and share > 2 * revisit_frames(walk["c2w"], 0.5, 17.0).mean()


def test_resume_after_interruption(tmp_path, monkeypatch):
    real = schema.write_npz
    calls = {"n": 0}

    def flaky(path, **arrays):  # die while writing the second video's cameras
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        real(path, **arrays)

    monkeypatch.setattr(schema, "write_npz", flaky)
    with pytest.raises(KeyboardInterrupt):
        dataset.export(tmp_path, scenes=3, frames=20, size=16, seed=0, progress=False)
    vids = tmp_path / "videos"
    assert (vids / "000000" / "DONE").exists()
    assert (vids / "000001" / "video.mp4").exists() and not (vids / "000001" / "DONE").exists()
    assert not list(tmp_path.rglob("*.tmp*"))              # no temporary files left behind
    with pytest.raises(DataError, match="lists no videos"):  # nothing is published before the end
        open_dataset(tmp_path, progress=False)
    first = (vids / "000000" / "video.mp4").stat().st_mtime_ns

    monkeypatch.setattr(schema, "write_npz", real)
    done = []
    monkeypatch.setattr(dataset, "export_video", lambda d, *a, **k: (done.append(d.name), real_export(d, *a, **k)))
    dataset.export(tmp_path, scenes=3, frames=20, size=16, seed=0, progress=False)
    assert done == ["000001", "000002"]                    # the finished video is not redone
    assert (vids / "000000" / "video.mp4").stat().st_mtime_ns == first
    assert [v.frames for v in open_dataset(tmp_path, progress=False).videos] == [20, 20, 20]
    with pytest.raises(ValueError, match="other settings"):
        dataset.export(tmp_path, scenes=3, frames=21, size=16, seed=0, progress=False)


real_export = dataset.export_video


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="even"):
        dataset.export(tmp_path, scenes=1, frames=5, size=33, progress=False)
    with pytest.raises(ValueError, match="scenes"):
        dataset.export(tmp_path, scenes=0, frames=5, progress=False)
    with pytest.raises(ValueError, match="paths"):
        dataset.export(tmp_path, scenes=1, frames=5, paths="spiral", progress=False)


def test_another_tool_writes_the_format_by_hand(tmp_path):
    """docs/DATA.md's recipe with nothing but json, numpy and Pillow: cameras.json + PNG frames + dataset.json."""
    from PIL import Image

    F, W, H = 5, 48, 32
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (F, H, W, 3), dtype=np.uint8)
    vdir = tmp_path / "videos" / "walk"
    (vdir / "frames").mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(vdir / "frames" / f"{i:05d}.png")
    c2w = np.tile(np.eye(4), (F, 1, 1))
    c2w[:, :3, 3] = rng.normal(size=(F, 3))
    c2w[:, :3, :3] = np.linalg.qr(rng.normal(size=(F, 3, 3)))[0] * np.array([1, 1, 1])
    c2w[:, :3, :3] *= np.sign(np.linalg.det(c2w[:, :3, :3]))[:, None, None]   # proper rotations
    K = [[[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]] * F
    (vdir / "cameras.json").write_text(json.dumps({"timestamps": [i / 10 for i in range(F)], "intrinsics": K,
                                                   "c2w": c2w.tolist()}))
    (vdir / "captions.json").write_text(json.dumps({"segments": [{"start": 0, "end": F, "text": "a walk"}]}))
    (tmp_path / "dataset.json").write_text(json.dumps({"schema": "camworld.posed-videos", "version": 2,
                                                       "videos": [{"path": "videos/walk"}]}))
    index = open_dataset(tmp_path, progress=False)
    assert index.videos[0].fps == pytest.approx(10) and (index.videos[0].width, index.videos[0].height) == (W, H)
    assert not index.planar
    v = read_video(vdir)
    np.testing.assert_array_equal(v["frames"], frames)
    np.testing.assert_allclose(v["c2w"], c2w)
    assert v["captions"]["segments"][0]["text"] == "a walk"
    # and the writer API round-trips the same arrays through npz + mp4
    schema.write_video(tmp_path / "copy" / "videos" / "walk", frames, v["timestamps"], v["intrinsics"], c2w)
    schema.write_dataset(tmp_path / "copy", ["videos/walk"])
    w = read_video(tmp_path / "copy" / "videos" / "walk")
    np.testing.assert_allclose(w["c2w"], c2w)
    np.testing.assert_allclose(w["timestamps"], v["timestamps"])
    assert w["frames"].shape == frames.shape
