"""The VAE stage: reconstruction training on single frames from random scenes and free poses (or from
recorded videos: ``recorded.py``), then the latent scale measured from held-out data. With ``freeze_encoder`` (and ``init``) only the decoder
trains, so the latent space of an existing DiT stays valid. With ``train.vae_adv_weight > 0`` a patch discriminator
trains beside it (``adversarial.py``): a decoder that draws edges and texture instead of their mean."""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from camworld.metrics import psnr, ssim
from camworld.model import WorldModel
from camworld.model.vae import frames_to_tensor
from camworld.train.adversarial import PatchDiscriminator, adversarial_step
from camworld.train.runtime import (BatchStream, CSVLog, RunConfig, check_ranks_identical, data_record, dist_info,
                                    load_train_state, progress, save_train_state)


@dataclass
class VAERunConfig(RunConfig):
    freeze_encoder: bool = False     # train only the decoder (needs init: the VAE whose latent space to keep)


def _vae_frames(step: int, *, seed: int, rank: int, batch_size: int, frame_size: int, source=None) -> np.ndarray:
    """One VAE step's frames from the generator of (seed, step, rank): sim frames at random free poses, or
    frames of recorded videos (``source``, a ``recorded.RecordedSource``). Pure and module level, so the
    workers of ``BatchStream`` can run it."""
    from camworld.data import batch_rng, vae_batch

    rng = batch_rng(seed, step, rank)
    return vae_batch(rng, batch_size, frame_size) if source is None else source.frames(rng, batch_size, frame_size)


def train_vae(run: VAERunConfig, cfg, device) -> WorldModel:
    from camworld.data import vae_batch
    from camworld.train.recorded import prepare

    rank, world = dist_info()
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    model = WorldModel(cfg).to(device)
    if run.init:  # e.g. decoder fine-tuning: start from a trained VAE and keep its latent scale
        init = WorldModel.load(run.init, device=device)
        if init.cfg.vae != cfg.vae:
            raise SystemExit(f"--init VAE config {init.cfg.vae} differs from the preset's {cfg.vae}")
        model.vae.load_state_dict(init.vae.state_dict())
        model.cfg.latent_scale = cfg.latent_scale = init.cfg.latent_scale
    vae = model.vae.to(memory_format=torch.channels_last)
    if run.freeze_encoder:
        if not run.init:
            raise SystemExit("--freeze-encoder needs --init PATH (the VAE whose latent space the DiT uses)")
        # the latent space stays fixed (a DiT trained on it stays valid); only the decoder improves
        vae.encoder.requires_grad_(False)
    net = nn.parallel.DistributedDataParallel(vae) if world > 1 else vae
    tc = cfg.train
    opt = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=tc.vae_lr, weight_decay=0.0)
    adv = tc.vae_adv_weight > 0
    disc = dopt = None
    if adv:
        if world > 1:
            raise SystemExit("train.vae_adv_weight: the adversarial decoder trains in one process (no torchrun)")
        disc = PatchDiscriminator(tc.vae_disc_channels).to(device)
        dopt = torch.optim.AdamW(disc.parameters(), lr=tc.vae_disc_lr, betas=(0.5, 0.9), weight_decay=0.0)
    step = 0
    if run.resume:
        step = load_train_state(out, model, opt, aux=(disc, dopt) if adv else None)["step"]
    log = CSVLog(out / "log.csv", ["step", "loss", "psnr_train", "psnr_heldout", "samples_per_s", "time"]
                 + (["sharp_heldout", "d_loss", "g_loss", "adv_w"] if adv else []))
    total = run.steps or tc.vae_steps
    source = (prepare(run.data, out, run.resume, cfg, rank, world, min_frames=1, threads=max(1, run.workers))
              if run.data else None)
    held_rng = np.random.default_rng([run.seed, 10**9])
    held = (vae_batch(held_rng, 64, cfg.frame_size, heldout=True) if source is None
            else source.frames(held_rng, 64, cfg.frame_size, heldout=True))
    bar = progress(total, step, rank != 0)
    t0, seen = time.time(), 0
    stream = BatchStream(functools.partial(_vae_frames, seed=run.seed, rank=rank, batch_size=tc.vae_batch_size,
                                           frame_size=cfg.frame_size, source=source), run.workers)
    for frames in stream.iterate(step, total):
        x = frames_to_tensor(frames, device).contiguous(memory_format=torch.channels_last)
        for g in opt.param_groups:
            g["lr"] = tc.vae_lr * min(1.0, (step + 1) / 100) * (0.1 if step > 0.8 * total else 1.0)
        # the posterior sample's noise from (seed, step, rank) too (not torch's global generator), so resume is exact
        g = torch.Generator(device=device).manual_seed(int(np.random.default_rng([run.seed, step, rank, 1]).integers(2**62)))
        loss, recon = net(x, g)  # VAE.forward is its loss, so DDP syncs gradients
        extra = {}
        if adv:
            extra = adversarial_step(disc, dopt, x, recon, loss, vae.decoder.body[-1].weight,
                                     tc.vae_adv_weight if step >= tc.vae_adv_start else 0.0)
            loss = loss + extra.pop("g_term")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        seen += len(frames) * world
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", sps=f"{seen / (time.time() - t0):.0f}")
        if rank == 0 and (step % run.log_every == 0 or step == total):
            vae.eval()
            rec = model.decode(model.encode(held))  # both apply the current latent scale
            vae.train()
            p_train = psnr(((recon.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy(), frames)
            p_held = float(np.mean([psnr(a, b) for a, b in zip(rec, held)]))
            row = {"step": step, "loss": f"{loss.item():.5f}", "psnr_train": f"{p_train:.2f}",
                   "psnr_heldout": f"{p_held:.2f}", "samples_per_s": f"{seen / (time.time() - t0):.1f}",
                   "time": f"{time.time():.0f}"}
            sharp = ""
            if adv:
                row.update({"sharp_heldout": f"{recon_sharpness(rec, held):.3f}",
                            **{k: f"{v:.4f}" for k, v in extra.items()}})
                sharp = f", sharpness {row['sharp_heldout']}"
            log.write(row)
            bar.write(f"step {step}: loss {loss.item():.4f} held-out PSNR {p_held:.2f} dB{sharp}")
        if rank == 0 and (step % run.save_every == 0 or step == total):
            _finish_vae(model, held, device, run, step)
            save_train_state(out, model, opt, step, {"stage": "vae", "seed": run.seed},
                             aux=(disc, dopt) if adv else None)
    bar.close()
    stream.close()
    check_ranks_identical(vae)
    return model


def recon_sharpness(rec: np.ndarray, ref: np.ndarray) -> float:
    """The fidelity benchmark's pooled sharpness ratio of reconstructions against their frames (1.0 = as sharp)."""
    from camworld.fidelity import sharpness, sharpness_ratio

    return sharpness_ratio(sharpness(rec), sharpness(ref))[0]


def _finish_vae(model, held, device, run: VAERunConfig, step: int):
    """Set the latent scale from data and write a loadable checkpoint (the DiT part is untrained)."""
    with torch.no_grad():
        model.vae.eval()
        z = model.vae.encode(frames_to_tensor(held, device))
        model.vae.train()
    if not run.freeze_encoder:
        model.cfg.latent_scale = float(z.std().item())
    rec = model.decode(z / model.cfg.latent_scale)
    metrics = {**reconstruction_metrics(rec, held), "sharpness": recon_sharpness(rec, held)}
    model.save(run.out / "model", record={"stage": "vae", "step": step, "seed": run.seed, "data": data_record(run),
                                          "command": " ".join(sys.argv), "vae_heldout": metrics})


def reconstruction_metrics(rec: np.ndarray, ref: np.ndarray) -> dict:
    return {"psnr": float(np.mean([psnr(a, b) for a, b in zip(rec, ref)])),
            "ssim": float(np.mean([ssim(a, b) for a, b in zip(rec, ref)]))}
