"""Tests for camworld.sim.dataset: export round trip and resuming after an interruption."""

import json

import numpy as np
import pytest

from camworld import geometry as g
from camworld import sim
from camworld.sim import dataset


def test_export_round_trip(tmp_path):
    dirs = dataset.export(tmp_path, scenes=2, frames=80, size=32, depth=True, seed=5, progress=False)
    assert len(dirs) == 2
    fmt = json.loads((tmp_path / "format.json").read_text())
    assert fmt["settings"]["frames"] == 80 and "cameras.npz:extrinsics" in fmt["fields"]
    assert "cameras.npz" in (tmp_path / "README.md").read_text()
    v = dataset.read_video(dirs[1])
    assert v["frames"].shape == (80, 32, 32, 3) and v["frames"].dtype == np.uint8
    assert v["intrinsics"].shape == (80, 3, 3) and v["extrinsics"].shape == (80, 3, 4)
    assert v["poses"].shape == (80, 3) and v["depth"].shape == (80, 32, 32)
    np.testing.assert_allclose(v["intrinsics"][0], g.intrinsics(32, 32))
    np.testing.assert_allclose(v["extrinsics"], g.planar_to_extrinsics(v["poses"]))
    assert v["meta"]["seed"] == 6 and v["meta"]["style"] == sim.STYLES[6 % len(sim.STYLES)]
    assert [s["start"] for s in v["captions"]["segments"]] == [0, 77]
    assert all(len(s["text"]) > 10 for s in v["captions"]["segments"])
    # the stored cameras reproduce the stored frames (mp4 is lossy) and depth (exact)
    scene = sim.make_scene(v["meta"]["seed"], v["meta"]["style"])
    rgb, depth = sim.render(scene, v["poses"], 32, 32)
    np.testing.assert_array_equal(depth, v["depth"])
    mse = np.mean((rgb.astype(float) - v["frames"]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 22


def test_resume_after_interruption(tmp_path, monkeypatch):
    real = dataset._write_npz
    calls = {"n": 0}

    def flaky(path, **arrays):  # die while writing the second video's cameras
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        real(path, **arrays)

    monkeypatch.setattr(dataset, "_write_npz", flaky)
    with pytest.raises(KeyboardInterrupt):
        dataset.export(tmp_path, scenes=3, frames=20, size=16, seed=0, progress=False)
    vids = tmp_path / "videos"
    assert (vids / "000000" / "DONE").exists()
    assert (vids / "000001" / "video.mp4").exists() and not (vids / "000001" / "DONE").exists()
    assert not list(tmp_path.rglob("*.tmp*"))              # no temporary files left behind
    with pytest.raises(ValueError, match="incomplete"):
        dataset.read_video(vids / "000001")
    first = (vids / "000000" / "video.mp4").stat().st_mtime_ns

    monkeypatch.setattr(dataset, "_write_npz", real)
    done = []
    monkeypatch.setattr(dataset, "export_video", lambda d, *a, **k: (done.append(d.name), real_export(d, *a, **k)))
    dataset.export(tmp_path, scenes=3, frames=20, size=16, seed=0, progress=False)
    assert done == ["000001", "000002"]                    # the finished video is not redone
    assert (vids / "000000" / "video.mp4").stat().st_mtime_ns == first
    for i in range(3):
        assert dataset.read_video(vids / f"{i:06d}")["frames"].shape == (20, 16, 16, 3)
    with pytest.raises(ValueError, match="other settings"):
        dataset.export(tmp_path, scenes=3, frames=21, size=16, seed=0, progress=False)


real_export = dataset.export_video


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="even"):
        dataset.export(tmp_path, scenes=1, frames=5, size=33, progress=False)
    with pytest.raises(ValueError, match="scenes"):
        dataset.export(tmp_path, scenes=0, frames=5, progress=False)
