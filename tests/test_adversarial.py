"""Adversarial decoder fine-tuning: the discriminator's shape and losses, the adaptive weight, and the stage
(latent space kept, exact resume with the discriminator in the same training state, identical to the plain
decoder fine-tune until the adversarial term starts, clear errors)."""

import csv

import pytest
import torch
from safetensors.torch import load_file

from camworld import train
from camworld.model import WorldModel
from camworld.train.adversarial import PatchDiscriminator, adaptive_weight, d_hinge, g_hinge


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    train.main(["--stage", "vae", "--preset", "tiny", "--out", str(out), "--steps", "4", "--log-every", "4",
                "--save-every", "4", "--threads", "1"])
    return out / "model.safetensors"


def _adv(out, vae, steps, *extra, start=1, resume=False):
    argv = ["--stage", "vae", "--preset", "tiny", "--out", str(out), "--init", str(vae), "--freeze-encoder",
            "--steps", str(steps), "--log-every", "2", "--save-every", "2", "--seed", "4", "--threads", "1",
            "--set", "train.vae_adv_weight=0.5", f"train.vae_adv_start={start}", *extra]
    train.main(argv + (["--resume"] if resume else []))


def test_discriminator_gives_one_logit_per_patch_and_rejects_bad_shapes():
    d = PatchDiscriminator(16)
    assert d(torch.zeros(3, 3, 64, 64)).shape == (3, 1, 8, 8)
    assert d(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 4, 4)
    assert PatchDiscriminator(16, in_channels=4, strides=(1, 2, 2))(torch.zeros(2, 4, 16, 16)).shape == (2, 1, 4, 4)
    assert PatchDiscriminator(16, in_channels=4, strides=(1, 2, 1))(torch.zeros(2, 4, 16, 16)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=">= 8"):
        PatchDiscriminator(4)
    with pytest.raises(ValueError, match="strides"):
        PatchDiscriminator(16, strides=(2, 3, 2))


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    # real: relu(1-2)=0, relu(1-0)=1 -> 0.5; fake: relu(1-2)=0, relu(1+0.5)=1.5 -> 0.75; half their sum
    assert d_hinge(real, fake).item() == pytest.approx(0.625)
    assert d_hinge(torch.full((4,), 1.0), torch.full((4,), -1.0)).item() == 0.0   # beyond the margins: nothing
    assert g_hinge(fake).item() == pytest.approx(0.75)
    # weighted: a patch of weight 0 does not count, whatever its logit
    w = torch.tensor([0.0, 1.0])
    assert g_hinge(torch.tensor([-50.0, 0.5]), w).item() == pytest.approx(-0.5)
    assert d_hinge(real, torch.tensor([50.0, -2.0]), w).item() == pytest.approx(0.25)


def test_adaptive_weight_matches_the_gradient_norms_at_the_last_layer():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.tensor([3.0, 4.0])
    rec = (w * x).sum()          # d/dw = x, norm 5
    adv = 0.5 * (w ** 2).sum()   # d/dw = w, norm sqrt(5)
    got = adaptive_weight(rec, adv, w, scale=0.5)
    assert not got.requires_grad
    assert got.item() == pytest.approx(0.5 * 5 / (5 ** 0.5 + 1e-4), rel=1e-5)
    assert adaptive_weight(rec, 1e-9 * adv, w, scale=1.0, cap=10.0).item() == 10.0


def test_adversarial_fine_tune_keeps_latent_space_logs_and_resumes_exactly(tiny_vae, tmp_path):
    _adv(tmp_path / "a", tiny_vae, 4)
    _adv(tmp_path / "b", tiny_vae, 2)
    _adv(tmp_path / "b", tiny_vae, 4, resume=True)
    a = load_file(str(tmp_path / "a" / "train_state.safetensors"))
    b = load_file(str(tmp_path / "b" / "train_state.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("aux.model.") for k in a)   # the discriminator is saved too
    for k in a:
        assert torch.equal(a[k], b[k]), k
    before, after = WorldModel.load(tiny_vae), WorldModel.load(tmp_path / "a" / "model.safetensors")
    for (k, x), (_, y) in zip(before.vae.encoder.state_dict().items(), after.vae.encoder.state_dict().items()):
        assert torch.equal(x, y), k
    assert after.cfg.latent_scale == before.cfg.latent_scale
    rows = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    assert [r["step"] for r in rows] == ["2", "4"]
    assert float(rows[-1]["adv_w"]) > 0 and 0 < float(rows[-1]["sharp_heldout"]) < 5
    with pytest.raises(ValueError, match="saved with a second network"):   # a plain resume of an adversarial run is refused
        train.main(["--stage", "vae", "--preset", "tiny", "--out", str(tmp_path / "a"), "--init", str(tiny_vae),
                    "--freeze-encoder", "--steps", "6", "--resume", "--threads", "1"])


def test_until_the_adversarial_term_starts_the_decoder_trains_as_without_it(tiny_vae, tmp_path):
    """The discriminator learns from step 0, but the decoder hears it only from vae_adv_start on: before that the
    decoder's weights are bit for bit those of the plain decoder fine-tune; after it they are not."""
    train.main(["--stage", "vae", "--preset", "tiny", "--out", str(tmp_path / "plain"), "--init", str(tiny_vae),
                "--freeze-encoder", "--steps", "4", "--log-every", "2", "--save-every", "2", "--seed", "4",
                "--threads", "1"])
    _adv(tmp_path / "late", tiny_vae, 4, start=100)
    _adv(tmp_path / "early", tiny_vae, 4, start=0)
    dec = [WorldModel.load(tmp_path / n / "model.safetensors").vae.decoder.state_dict()
           for n in ("plain", "late", "early")]
    assert all(torch.equal(dec[0][k], dec[1][k]) for k in dec[0])
    assert not all(torch.equal(dec[0][k], dec[2][k]) for k in dec[0])


def _adv_dit(out, vae, steps, *sets, resume=False):
    argv = ["--stage", "dit", "--preset", "tiny", "--out", str(out), "--vae", str(vae), "--steps", str(steps),
            "--log-every", "2", "--save-every", "2", "--eval-batch", "2", "--seed", "5", "--threads", "1",
            "--set", "train.warp_train_prob=0.5", "train.dit_adv_weight=0.5", *sets]
    train.main(argv + (["--resume"] if resume else []))


def test_adversarial_dit_fine_tune_resumes_exactly_and_logs(tiny_vae, tmp_path):
    """The masked, finer discriminator (the second run's settings); the plain one in the next test."""
    fine = ("train.dit_disc_strides=1,2,1", "train.dit_adv_unseen=true")
    _adv_dit(tmp_path / "a", tiny_vae, 4, *fine)
    _adv_dit(tmp_path / "b", tiny_vae, 2, *fine)
    _adv_dit(tmp_path / "b", tiny_vae, 4, *fine, resume=True)
    a = load_file(str(tmp_path / "a" / "train_state.safetensors"))
    b = load_file(str(tmp_path / "b" / "train_state.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("aux.model.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = list(csv.DictReader(open(tmp_path / "a" / "log.csv")))
    assert float(rows[-1]["adv_w"]) > 0 and float(rows[-1]["sharp_all"]) > 0


def test_adversarial_dit_needs_the_warp_start_and_changes_only_once_it_starts(tiny_vae, tmp_path):
    with pytest.raises(SystemExit, match="warp_train_prob"):
        train.main(["--stage", "dit", "--preset", "tiny", "--out", str(tmp_path / "x"), "--vae", str(tiny_vae),
                    "--steps", "1", "--set", "train.dit_adv_weight=0.5"])
    _adv_dit(tmp_path / "late", tiny_vae, 2, "train.dit_adv_start=100")
    _adv_dit(tmp_path / "early", tiny_vae, 2, "train.dit_adv_start=0")
    train.main(["--stage", "dit", "--preset", "tiny", "--out", str(tmp_path / "plain"), "--vae", str(tiny_vae),
                "--steps", "2", "--log-every", "2", "--save-every", "2", "--eval-batch", "2", "--seed", "5",
                "--threads", "1", "--set", "train.warp_train_prob=0.5"])
    sd = [load_file(str(tmp_path / n / "train_state.safetensors")) for n in ("plain", "late", "early")]
    dit = [k for k in sd[0] if k.startswith("model.dit.")]
    assert all(torch.equal(sd[0][k], sd[1][k]) for k in dit)       # the discriminator alone changes no DiT weight
    assert not all(torch.equal(sd[0][k], sd[2][k]) for k in dit)


def _turn_batch():
    """A tiny model and a one-sample batch: one random context frame at yaw 0, targets at yaw 0 and 30 degrees."""
    import numpy as np

    from camworld.data import Batch
    from camworld.geometry import planar_to_extrinsics
    from camworld.model import WorldModel, preset

    model = WorldModel(preset("tiny")).eval()
    S = model.cfg.frame_size

    def ext(yaw_deg):
        return planar_to_extrinsics(np.array([[0.0, 0.0, np.radians(yaw_deg)]]))[0].astype(np.float32)

    rng = np.random.default_rng(0)
    batch = Batch(ctx_frames=rng.integers(0, 255, (1, 1, S, S, 3), dtype=np.uint8),
                  ctx_ext=np.stack([ext(0)])[None], ctx_mask=np.ones((1, 1), bool),
                  tgt_frames=np.zeros((1, 2, S, S, 3), np.uint8), tgt_ext=np.stack([ext(0), ext(30)])[None],
                  prompts=[None], revisit=np.zeros(1, bool))
    return model, batch


def test_warp_start_reports_what_its_frame_did_not_see():
    """The unseen share per latent cell: 0 where the target camera is the context camera, > 0 on the side a turn
    uncovers, and the latents are those of the plain call."""
    from camworld.train.dit import warp_start_latents

    model, batch = _turn_batch()
    z, miss = warp_start_latents(model, batch, "cpu", unseen=True)
    assert torch.equal(z, warp_start_latents(model, batch, "cpu"))
    h = model.latent_shape[1]
    assert miss.shape == (1, 2, h, h) and float(miss.min()) >= 0 and float(miss.max()) <= 1
    assert float(miss[0, 0].sum()) == 0.0
    assert float(miss[0, 1].sum()) > 0 and float(miss[0, 1].mean()) < 1


def test_latent_warp_start_for_training_warps_the_context_latents_and_marks_whole_unseen_cells():
    """train.warp_train_space="latents": the start at the context frame's own camera is its latents exactly;
    a turned target is their reprojection with an unseen strip marked 1 per latent cell; bad input is refused."""
    from camworld.train.dit import encode_batch, warp_start_latents

    model, batch = _turn_batch()
    ctx = encode_batch(model, batch, "cpu")[0]
    z, miss = warp_start_latents(model, batch, "cpu", unseen=True, space="latents", ctx=ctx)
    h = model.latent_shape[1]
    assert z.shape == (1, 2) + tuple(ctx.shape[2:]) and miss.shape == (1, 2, h, h)
    assert torch.allclose(z[0, 0], ctx[0, 0], atol=1e-5) and float(miss[0, 0].sum()) == 0.0
    assert not torch.allclose(z[0, 1], ctx[0, 0], atol=1e-2)
    assert set(miss[0, 1].unique().tolist()) == {0.0, 1.0}
    assert not torch.allclose(z, warp_start_latents(model, batch, "cpu"), atol=1e-2)    # not the pixel warp
    with pytest.raises(ValueError, match="needs the context latents"):
        warp_start_latents(model, batch, "cpu", space="latents")
    with pytest.raises(ValueError, match="warp_train_space"):
        warp_start_latents(model, batch, "cpu", space="voxels", ctx=ctx)
