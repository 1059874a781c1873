"""The memory benchmark and the demo run end to end (tiny model), and the shipped model remembers."""

import json

import numpy as np
import pytest
import torch

from camworld.eval import evaluate, make_episodes, markdown, run_episodes, score
from camworld.model import DEFAULT_CHECKPOINT, WorldModel, preset
from camworld.retrieval import DEFAULT_STRATEGY
from camworld.world import load_world_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    path = WorldModel(preset("tiny")).save(tmp_path_factory.mktemp("tiny") / "tiny")
    return load_world_model(path, device="cpu"), path


def test_episodes_are_palindromes_on_heldout_scenes():
    from camworld.sim import is_heldout

    for kind in ("rot180", "walk3m"):
        ep = make_episodes(kind, 2, 32, seed=1)
        for e in ep:
            assert is_heldout(e.scene_seed)
            assert np.allclose(e.poses, e.poses[::-1])
            assert np.array_equal(e.gt, e.gt[::-1])  # same pose, same ground-truth pixels


def test_episodes_are_the_same_in_every_process():
    """The benchmark's episodes depend on the seed only (not on Python's per-process string hashing)."""
    import os
    import subprocess
    import sys

    code = ("from camworld.eval import make_episodes; e = make_episodes('rot90', 2, 16, seed=3); "
            "print([x.scene_seed for x in e], e[0].poses[0].round(6).tolist())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED=str(h))).stdout for h in (1, 2)}
    assert len(outs) == 1, outs


def test_history_walk_ends_at_the_episode_start_and_runs(tiny):
    model, _ = tiny
    plain = make_episodes("rot90", 2, 32, seed=4)
    eps = make_episodes("rot90", 2, 32, seed=4, history=6)
    for e in eps:
        assert e.history_poses.shape == (5, 3) and e.history_gt.shape == (5, 32, 32, 3)
        step = np.linalg.norm(e.history_poses[-1, :2] - e.poses[0, :2])
        assert step < 0.5  # one model frame of walking before the start pose
    assert plain[0].history_poses is None
    frames, _ = run_episodes(model, eps, "fov+nonadj", 3, "gt")
    assert frames.shape == (2, len(eps[0].poses), 32, 32, 3)


def test_benchmark_end_to_end_on_tiny(tiny, tmp_path):
    model, _ = tiny
    res = evaluate(model, episodes_per_kind=2, k=3, kinds=["rot60", "rot180"], strategies=["recent", "coverage"], ours="coverage",
                   ks=(1, 3), out=tmp_path, progress=False)
    for name in ("results.md", "results.json", "psnr_vs_theta.png", "rot180_coverage.mp4", "rot180_recent.mp4"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert {(r["strategy"], r["mode"]) for r in rows} >= {("recent", "gt"), ("coverage", "history")}
    assert all(np.isfinite(r["psnr"]) and r["fps"] > 0 for r in rows)
    assert "Table 2" in markdown(res)


def test_history_score_of_a_perfect_copy_is_high():
    ep = make_episodes("rot60", 2, 32, seed=0)
    frames = np.stack([e.gt for e in ep])  # a world that returns exactly what it showed on the way out
    assert score(ep, frames, "history")["psnr"] > 60
    noisy = frames.copy()
    noisy[:, len(ep[0].poses) // 2 + 1:] = 0  # forgets everything on the way back
    assert score(ep, noisy, "history")["psnr"] < 15


def test_demo_writes_video(tiny, tmp_path, capsys):
    from camworld.demo import run_demo

    _, path = tiny
    report = run_demo(out=str(tmp_path / "demo.mp4"), checkpoint=path, theta=60, k=3, device="cpu")
    assert (tmp_path / "demo.mp4").stat().st_size > 0
    assert (tmp_path / "demo.png").stat().st_size > 0  # the still contact sheet
    assert set(report) == {DEFAULT_STRATEGY, "recent"}
    assert "PSNR of the return" in capsys.readouterr().out
    from camworld.demo import demo_path

    assert demo_path(tmp_path / "new" / "dir") == tmp_path / "new" / "dir" / "demo.mp4" and (tmp_path / "new" / "dir").is_dir()
    assert demo_path(tmp_path) == tmp_path / "demo.mp4"
    with pytest.raises(ValueError, match=r"\.mp4 file or a folder"):
        demo_path(tmp_path / "demo.gif")


def test_shipped_checkpoint_loads_and_validates():
    assert DEFAULT_CHECKPOINT.exists(), "the shipped default world model is missing"
    assert DEFAULT_CHECKPOINT.stat().st_size < 30 * 2**20
    model = load_world_model(None, device="cpu")
    assert model.cfg.preset == "cpu" and model.cfg.frame_size == 64
    record = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())["record"]
    assert record["dit"]["step"] > 0 and "command" in record["dit"]


def test_shipped_model_remembers_better_with_retrieval_than_recent():
    """Regression: on fixed held-out 180-degree returns, our retrieval beats a recent-frames window."""
    model = load_world_model(None, device="cpu")
    eps = make_episodes("rot180", 4, model.cfg.frame_size, seed=123)
    ours = score(eps, run_episodes(model, eps, DEFAULT_STRATEGY, 10, "history")[0], "history")["psnr"]
    recent = score(eps, run_episodes(model, eps, "recent", 10, "history")[0], "history")["psnr"]
    # at the env's 3 degrees per frame (121 frames): fov+nonadj 37.8 dB vs recent 23.6 dB (at the old 15-degree
    # stress protocol: 35.9 vs 25.9); the bar is issue 7's target
    assert ours > recent + 3.0 and ours > 25.0, (ours, recent)
