"""Training: both stages run on the tiny preset, resume is exact, DDP keeps ranks identical, the CLI maps
arguments to the stage configs."""

import os
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


def test_ddp_two_cpu_processes_keep_identical_weights(tiny_vae, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
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
                                           threads=2, log_every=4, save_every=5, vae="v", workers=2, eval_batch=6)
    vae = train.vae_run_config(args)
    assert vae.freeze_encoder and vae.out == tmp_path and vae.steps == 7 and vae.save_every == 5
    args = p.parse_args(["--stage", "export", "--out", "o", "--dit", "d", "--half", "--record", '{"x": 1}',
                         "--set", "diffusion.shift=3.0"])
    assert train.export_config(args) == train.ExportConfig(dit="d", out="o", vae=None, half=True, record={"x": 1},
                                                           overrides=("diffusion.shift=3.0",))
    with pytest.raises(SystemExit, match="needs --steps"):
        train.main(["--stage", "dit", "--out", str(tmp_path / "x"), "--vae", "v"])
