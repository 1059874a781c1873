"""Training: both stages run on the tiny preset, resume is exact, DDP keeps ranks identical, the CLI maps
arguments to the stage configs."""

import os
from pathlib import Path
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from camworld import train
from camworld.model import WorldModel


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    train.main(["--stage", "vae", "--preset", "tiny", "--out", str(out), "--steps", "6", "--log-every", "3",
                "--save-every", "3"])
    return out / "model.safetensors"


def _dit(out, vae, steps, resume=False, workers=0):
    argv = ["--stage", "dit", "--preset", "tiny", "--out", str(out), "--vae", str(vae), "--steps", str(steps),
            "--log-every", "2", "--save-every", "2", "--eval-batch", "2", "--seed", "5", "--workers", str(workers)]
    train.main(argv + (["--resume"] if resume else []))


def _same_state(a_dir, b_dir):
    a = load_file(str(a_dir / "train_state.safetensors"))
    b = load_file(str(b_dir / "train_state.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_vae_stage_writes_loadable_checkpoint_with_latent_scale(tiny_vae):
    m = WorldModel.load(tiny_vae)
    assert m.cfg.latent_scale > 0
    assert (tiny_vae.parent / "log.csv").read_text().count("\n") >= 2


def test_resume_is_exact(tiny_vae, tmp_path):
    _dit(tmp_path / "a", tiny_vae, 4)
    _dit(tmp_path / "b", tiny_vae, 2)
    _dit(tmp_path / "b", tiny_vae, 4, resume=True)
    _same_state(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a" / "samples").is_dir()


def test_render_workers_give_the_same_run_as_inline(tiny_vae, tmp_path):
    _dit(tmp_path / "inline", tiny_vae, 3)
    _dit(tmp_path / "pool", tiny_vae, 3, workers=2)
    _same_state(tmp_path / "inline", tmp_path / "pool")


def test_resume_without_state_is_a_clear_error(tiny_vae, tmp_path):
    with pytest.raises(FileNotFoundError, match="no training state"):
        _dit(tmp_path / "empty", tiny_vae, 2, resume=True)


def _free_port() -> str:
    """A TCP port nobody listens on now (a fixed one can still be held by an earlier run's lingering socket)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_ddp_two_cpu_processes_keep_identical_weights(tiny_vae, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", _free_port(),
           "-m", "camworld.train", "--stage", "dit", "--preset", "tiny", "--out", str(tmp_path / "ddp"),
           "--vae", str(tiny_vae), "--steps", "3", "--eval-batch", "2", "--threads", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "all 2 ranks hold identical weights" in res.stdout + res.stderr
    assert WorldModel.load(tmp_path / "ddp" / "model.safetensors").cfg.preset == "tiny"


def test_decoder_finetune_keeps_the_latent_space(tiny_vae, tmp_path):
    before = WorldModel.load(tiny_vae)
    train.main(["--stage", "vae", "--preset", "tiny", "--out", str(tmp_path / "dec"), "--steps", "3",
                "--init", str(tiny_vae), "--freeze-encoder", "--log-every", "3", "--save-every", "3"])
    after = WorldModel.load(tmp_path / "dec" / "model.safetensors")
    assert after.cfg.latent_scale == before.cfg.latent_scale
    for (k, a), (_, b) in zip(before.vae.encoder.state_dict().items(), after.vae.encoder.state_dict().items()):
        assert torch.equal(a, b), k
    assert any(not torch.equal(a, b) for a, b in zip(before.vae.decoder.parameters(), after.vae.decoder.parameters()))


def test_export_merges_decoder_and_halves(tiny_vae, tmp_path):
    _dit(tmp_path / "d", tiny_vae, 2)
    train.main(["--stage", "export", "--dit", str(tmp_path / "d" / "model.safetensors"), "--vae", str(tiny_vae),
                "--out", str(tmp_path / "ship" / "default"), "--half"])
    m = WorldModel.load(tmp_path / "ship" / "default.safetensors")
    ref = WorldModel.load(tmp_path / "d" / "model.safetensors")
    w = next(iter(m.dit.parameters()))
    assert torch.allclose(w, next(iter(ref.dit.parameters())), atol=1e-2)
    assert load_file(str(tmp_path / "ship" / "default.safetensors"))["dit.patch_in.weight"].dtype == torch.float16
    other = tmp_path / "other"
    train.main(["--stage", "vae", "--preset", "tiny", "--out", str(other), "--steps", "2", "--seed", "9",
                "--log-every", "2", "--save-every", "2"])
    with pytest.raises(SystemExit, match="different encoder"):
        train.main(["--stage", "export", "--dit", str(tmp_path / "d" / "model.safetensors"),
                    "--vae", str(other / "model.safetensors"), "--out", str(tmp_path / "x")])


def test_cli_maps_every_argument_to_the_stage_configs(tmp_path):
    """The CLI only maps arguments to configs: each stage's dataclass gets every field it has a flag for."""
    import argparse
    import dataclasses

    p = argparse.ArgumentParser()
    train.add_arguments(p)
    args = p.parse_args(["--stage", "dit", "--out", str(tmp_path), "--steps", "7", "--seed", "3", "--resume",
                         "--init", "a", "--device", "cpu", "--threads", "2", "--log-every", "4", "--save-every", "5",
                         "--vae", "v", "--workers", "2", "--eval-batch", "6", "--freeze-encoder"])
    dit = train.dit_run_config(args)
    assert dataclasses.asdict(dit) == dict(out=tmp_path, steps=7, seed=3, resume=True, init="a", device="cpu",
                                           threads=2, log_every=4, save_every=5, vae="v", workers=2, eval_batch=6,
                                           data=None)
    vae = train.vae_run_config(args)
    assert vae.freeze_encoder and vae.out == tmp_path and vae.steps == 7 and vae.save_every == 5 and vae.workers == 2
    args = p.parse_args(["--stage", "vae", "--out", "o", "--data", "d", "--data-stride", "2", "--data-reverse", "0",
                         "--skip-bad"])
    assert train.vae_run_config(args).data == train.DataConfig(root="d", stride=2, reverse_prob=0.0, skip_bad=True)
    args = p.parse_args(["--stage", "export", "--out", "o", "--dit", "d", "--half", "--record", '{"x": 1}',
                         "--set", "diffusion.shift=3.0"])
    assert train.export_config(args) == train.ExportConfig(dit="d", out="o", vae=None, half=True, record={"x": 1},
                                                           overrides=("diffusion.shift=3.0",))
    with pytest.raises(SystemExit, match="needs --steps"):
        train.main(["--stage", "dit", "--out", str(tmp_path / "x"), "--vae", "v"])


# ---------------------------------------------------------------- training from recorded videos (--data)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The sim exported as files: 3 training videos with revisits and 1 held-out one, at the tiny frame size."""
    from camworld.sim import dataset

    root = tmp_path_factory.mktemp("recorded")
    dataset.export(root, scenes=3, frames=90, size=32, seed=0, paths="revisits", heldout=1, progress=False)
    return root


def _from_folder(stage, out, data, steps, *extra):
    argv = ["--stage", stage, "--preset", "tiny", "--out", str(out), "--data", str(data), "--steps", str(steps),
            "--log-every", "2", "--save-every", "2", "--seed", "4"]
    train.main(argv + list(extra))


def test_both_stages_train_from_a_folder_and_resume_exactly(recorded, tmp_path, monkeypatch):
    import json

    from camworld.train import vae as vae_stage

    _from_folder("vae", tmp_path / "vae_a", recorded, 4)
    real = vae_stage._vae_frames

    def crash_at_step_2(step, **kw):   # the VAE's lr schedule depends on --steps: interrupt a 4-step run instead
        if step == 2:
            raise KeyboardInterrupt("simulated interruption after the save at step 2")
        return real(step, **kw)

    monkeypatch.setattr(vae_stage, "_vae_frames", crash_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        _from_folder("vae", tmp_path / "vae_b", recorded, 4)
    monkeypatch.setattr(vae_stage, "_vae_frames", real)
    _from_folder("vae", tmp_path / "vae_b", recorded, 4, "--resume")
    _same_state(tmp_path / "vae_a", tmp_path / "vae_b")
    vae = tmp_path / "vae_a" / "model.safetensors"
    assert "recorded" in json.loads(vae.with_suffix(".json").read_text())["record"]["data"]
    dit = ["--vae", str(vae), "--eval-batch", "4"]
    _from_folder("dit", tmp_path / "dit_a", recorded, 4, *dit)
    _from_folder("dit", tmp_path / "dit_b", recorded, 2, *dit)
    _from_folder("dit", tmp_path / "dit_b", recorded, 4, "--resume", *dit)
    _same_state(tmp_path / "dit_a", tmp_path / "dit_b")
    index = json.loads((tmp_path / "dit_a" / "data_index.json").read_text())
    assert [v["split"] for v in index["videos"]] == ["train"] * 3 + ["heldout"]
    # the checkpoint is a world model that `camworld eval memory` scores
    from camworld.eval import evaluate

    ckpt = tmp_path / "dit_a" / "model.safetensors"
    from camworld.model.frames import checkpoint_cameras

    assert checkpoint_cameras(ckpt) == "planar"      # the sim's cameras are level at a constant height
    res = evaluate(WorldModel.load(ckpt), 1, 3, kinds=["rot60"], strategies=["fov+nonadj"], ks=(3,), progress=False)
    assert all(r["psnr"] > 5 for r in res["runs"])
    # ... and a world to explore
    import gymnasium as gym

    env = gym.make("ContextAsMemory-v0", checkpoint=str(ckpt), device="cpu")
    env.reset(seed=0)
    assert env.step(3)[0].shape == (32, 32, 3)


def test_recorded_workers_give_the_same_run_as_inline(recorded, tiny_vae, tmp_path):
    dit = ["--vae", str(tiny_vae), "--eval-batch", "2"]
    _from_folder("dit", tmp_path / "inline", recorded, 3, *dit)
    _from_folder("dit", tmp_path / "pool", recorded, 3, "--workers", "1", *dit)
    _same_state(tmp_path / "inline", tmp_path / "pool")


def test_recorded_batches_are_a_function_of_seed_step_rank_and_ranks_share_out_videos(recorded, tmp_path):
    import numpy as np

    from camworld.data import batch_rng
    from camworld.model import preset
    from camworld.train.recorded import DataConfig, prepare

    cfg = preset("tiny")
    data = DataConfig(root=str(recorded))
    s0 = prepare(data, tmp_path, False, cfg, rank=0, world=2, log=lambda m: None)
    s1 = prepare(data, tmp_path, False, cfg, rank=1, world=2, log=lambda m: None)
    v0, v1 = [v.path for v in s0.videos()], [v.path for v in s1.videos()]
    assert v0 == ["videos/000000", "videos/000002"] and v1 == ["videos/000001"]
    assert [v.path for v in s0.videos(heldout=True)] == ["videos/heldout-000000"]
    a, b = (s0.batch(batch_rng(1, 7, 0), cfg.train, 32) for _ in range(2))
    for x, y in zip((a.ctx_frames, a.ctx_ext, a.tgt_frames, a.tgt_ext, a.ctx_mask), (b.ctx_frames, b.ctx_ext,
                                                                                    b.tgt_frames, b.tgt_ext, b.ctx_mask)):
        np.testing.assert_array_equal(x, y)
    assert a.prompts == b.prompts and a.tgt_frames.shape == (4, 2, 32, 32, 3)
    import dataclasses

    assert s0.cache        # the fixture fits in memory; decoding windows per sample gives the very same frames
    d = dataclasses.replace(s0, cache=False).batch(batch_rng(1, 7, 0), cfg.train, 32)
    np.testing.assert_array_equal(a.ctx_frames, d.ctx_frames)
    np.testing.assert_array_equal(a.tgt_frames, d.tgt_frames)
    c = s0.batch(batch_rng(1, 8, 0), cfg.train, 32)
    assert not np.array_equal(a.tgt_frames, c.tgt_frames)
    # rank 1 only ever reads its own video: its frames are all from 000001's cameras
    from camworld.recorded import load_cameras

    own = load_cameras(recorded / "videos" / "000001")["c2w"][:, :3].astype(np.float32)
    for step in range(3):
        batch = s1.batch(batch_rng(1, step, 1), cfg.train, 32)
        for e in batch.tgt_ext.reshape(-1, 3, 4):
            assert np.abs(own - e).max((1, 2)).min() < 1e-6


def test_bad_videos_stop_training_with_the_file_named_or_are_skipped(recorded, tiny_vae, tmp_path):
    import json
    import shutil

    data = tmp_path / "data"
    shutil.copytree(recorded, data)
    mp4 = data / "videos" / "000001" / "video.mp4"
    mp4.write_bytes(mp4.read_bytes()[:500])
    with pytest.raises(SystemExit, match="000001/video.mp4: not a readable video"):
        _from_folder("vae", tmp_path / "v", data, 2)
    _from_folder("vae", tmp_path / "v", data, 2, "--skip-bad")
    index = json.loads((tmp_path / "v" / "data_index.json").read_text())
    assert len(index["skipped"]) == 1 and index["skipped"][0][0] == "videos/000001"
    # the data changed under a run: resume refuses
    shutil.rmtree(data / "videos" / "000002")
    doc = json.loads((data / "dataset.json").read_text())
    doc["videos"] = [v for v in doc["videos"] if v["path"] != "videos/000002"]
    (data / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match="differ from those this run started on"):
        _from_folder("vae", tmp_path / "v", data, 4, "--skip-bad", "--resume")


def test_ddp_from_a_folder_shards_videos_and_keeps_identical_weights(recorded, tiny_vae, tmp_path):
    import json

    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", _free_port(),
           "-m", "camworld.train", "--stage", "dit", "--preset", "tiny", "--out", str(tmp_path / "ddp"),
           "--data", str(recorded), "--vae", str(tiny_vae), "--steps", "3", "--eval-batch", "2", "--threads", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "all 2 ranks hold identical weights" in res.stdout + res.stderr
    assert len(json.loads((tmp_path / "ddp" / "data_index.json").read_text())["videos"]) == 4


def test_a_video_that_breaks_after_indexing_is_named_or_skipped(recorded, tmp_path):
    import dataclasses
    import shutil

    from camworld.data import batch_rng
    from camworld.model import preset
    from camworld.recorded import DataError
    from camworld.train.recorded import DataConfig, prepare

    data = tmp_path / "data"
    shutil.copytree(recorded, data)
    cfg = preset("tiny")
    source = dataclasses.replace(prepare(DataConfig(root=str(data)), tmp_path / "run", False, cfg, log=lambda m: None),
                                 cache=False)
    mp4 = data / "videos" / "000000" / "video.mp4"
    mp4.write_bytes(mp4.read_bytes()[:400])
    with pytest.raises(DataError, match="000000/video.mp4"):
        for step in range(8):          # some batch draws video 000000
            source.batch(batch_rng(0, step), cfg.train, 32)
    skipping = dataclasses.replace(source, data=dataclasses.replace(source.data, skip_bad=True))
    for step in range(8):
        assert skipping.batch(batch_rng(0, step), cfg.train, 32).tgt_frames.shape == (4, 2, 32, 32, 3)


def test_a_dit_trained_on_6dof_videos_is_a_6dof_world(tiny_vae, tmp_path):
    """Cameras that pitch and climb: the checkpoint's record says cameras 6dof, so World takes extrinsics."""
    import numpy as np

    from camworld import geometry as g
    from camworld.model.frames import checkpoint_cameras
    from camworld.recorded import schema
    from camworld.world import load_world_model

    rng = np.random.default_rng(0)
    F = 40
    c2w = np.tile(np.eye(4), (F, 1, 1))
    c2w[:, :3, :3] = g.planar_to_extrinsics(np.stack([np.zeros(F), np.zeros(F), np.linspace(0, 2, F)], 1))[:, :, :3]
    tilt = np.linspace(0, 0.5, F)   # the camera pitches up as it turns and climbs
    for i, a in enumerate(tilt):
        c2w[i, :3, :3] = c2w[i, :3, :3] @ np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    c2w[:, :3, 3] = np.stack([np.linspace(0, 3, F), np.zeros(F), np.linspace(1.2, 2.0, F)], 1)
    frames = rng.integers(0, 255, (F, 32, 32, 3), dtype=np.uint8)
    for name in ("a", "b"):
        schema.write_video(tmp_path / "data" / name, frames, np.arange(F) / 30,
                           np.broadcast_to(g.intrinsics(32, 32), (F, 3, 3)), c2w, image_ext=".png")
    schema.write_dataset(tmp_path / "data", ["a", "b"])
    _from_folder("dit", tmp_path / "run", tmp_path / "data", 2, "--vae", str(tiny_vae), "--eval-batch", "2")
    ckpt = tmp_path / "run" / "model.safetensors"
    assert checkpoint_cameras(ckpt) == "6dof"
    assert load_world_model(ckpt, device="cpu").trained_cameras == "6dof"
    from camworld.model import WorldModel

    assert WorldModel.load(ckpt, device="cpu").trained_cameras == "6dof"          # the plain loader says it too
    assert WorldModel.load(Path(ckpt).with_suffix(".json"), device="cpu").trained_cameras == "6dof"
