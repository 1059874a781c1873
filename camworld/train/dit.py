"""The DiT stage (paper Algorithm 1): the VAE is frozen, each step renders a batch (context frames
retrieved from the trajectory, target frames; or reads one from recorded videos, ``recorded.py``), encodes it and takes one flow-matching step; an EMA
of the weights is what ships. Every random draw of a step comes from (data seed, step, rank), so a
resumed run, a run with render workers and an inline run see the very same stream.

Letters: B batch, Fc context frames, Ft target frames, C/h/w latent channels and size.
"""

from __future__ import annotations

import copy
import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from camworld.metrics import psnr
from camworld.model import WorldModel
from camworld.model.config import WARP_SPACES
from camworld.model.diffusion import flow_loss, noise_context, sample
from camworld.train.runtime import (BatchStream, CSVLog, RunConfig, check_ranks_identical, data_record, dist_info,
                                    load_train_state, progress, save_train_state, warmup_lr)


@dataclass
class DiTRunConfig(RunConfig):
    vae: str | None = None           # the VAE checkpoint (from the VAE stage) whose latent space the DiT learns
    eval_batch: int = 16             # held-out samples in each evaluation (half of them revisits)


class DiTLoss(nn.Module):
    """Wraps encode_context + flow loss in one forward, so DDP sees a single call. With
    ``ctx_noise_max`` > 0 each sample's context latents are noised to a flow time drawn from
    U(0, ctx_noise_max), which the network is told (context noise augmentation). With
    ``self_ctx_prob`` > 0 the newest context frame of that share of samples is first replaced by the
    network's own sample of it (``self_generated_context``)."""

    def __init__(self, dit, ctx_noise_max: float = 0.0, self_ctx_prob: float = 0.0, self_ctx_steps: int = 4,
                 shift: float = 1.0, warp_prob: float = 0.0, warp_t_max: float = 0.5):
        super().__init__()
        self.dit = dit
        self.warp_prob, self.warp_t_max = float(warp_prob), float(warp_t_max)
        self.ctx_noise_max = float(ctx_noise_max)
        self.self_ctx_prob, self.self_ctx_steps, self.shift = float(self_ctx_prob), int(self_ctx_steps), float(shift)

    def forward(self, ctx, ctx_mask, ctx_ext, z0, tgt_ext, prompts, generator, warp=None, parts=False):
        if self.self_ctx_prob > 0:
            ctx, _ = self_generated_context(self.dit, ctx, ctx_mask, ctx_ext, prompts, self.self_ctx_prob,
                                            self.self_ctx_steps, generator, shift=self.shift)
        ctx_t = None
        if self.ctx_noise_max > 0:
            ctx_t = torch.rand(ctx.shape[0], generator=generator, device=ctx.device) * self.ctx_noise_max
            ctx = noise_context(ctx, ctx_mask, ctx_t, generator)
        state = self.dit.encode_context(ctx, ctx_mask, ctx_ext, prompts, ctx_t=ctx_t)
        if warp is not None and self.warp_prob > 0:
            return warp_flow_loss(self.dit, z0, tgt_ext, state, warp, self.warp_prob, self.warp_t_max, generator,
                                  parts=parts)
        return flow_loss(self.dit, z0, tgt_ext, state, generator)


def warp_flow_loss(dit, z0, tgt_ext, state, warp, prob: float, t_max: float, generator=None, parts: bool = False):
    """``flow_loss`` where a share ``prob`` of the samples start from the warp start instead: z_t = (1 - t) warp +
    t eps at t ~ U(0.2, t_max), with the velocity target (z_t - z0) / t, the one that lands on the true target
    z0 in one Euler step (the shipped sampler's single call from its warp start). warp: (B, Ft, C, h, w).
    ``parts``: -> (loss, the one-step predictions z_t - t v (B, Ft, C, h, w), which samples started from the
    warp (B,) bool), for the adversarial term."""
    from camworld.model.diffusion import sample_t

    B = z0.shape[0]
    t = sample_t(B, generator, z0.device)
    eps = torch.randn(z0.shape, generator=generator, device=z0.device)
    use = torch.rand(B, generator=generator, device=z0.device) < prob
    tw = 0.2 + torch.rand(B, generator=generator, device=z0.device) * max(t_max - 0.2, 0.0)
    t = torch.where(use, tw, t)
    tt = t.view(B, 1, 1, 1, 1)
    src = torch.where(use.view(B, 1, 1, 1, 1), warp.to(z0.dtype), z0)
    zt = (1 - tt) * src + tt * eps
    target = torch.where(use.view(B, 1, 1, 1, 1), (zt - z0) / tt, eps - z0)
    v = dit(zt, t, tgt_ext, state)
    loss = torch.nn.functional.mse_loss(v, target)
    return (loss, zt - tt * v, use) if parts else loss


@torch.no_grad()
def warp_start_latents(model, batch, device, unseen: bool = False, space: str = "pixels",
                       ctx: torch.Tensor | None = None):
    """The warp start of each target of a ``camworld.data.Batch``: its nearest valid context frame
    (``warp.nearest_sources``) reprojected to the target camera at the assumed depth, smooth-filled where that
    frame did not look, encoded -> scaled latents (B, Ft, C, h, w). ``space`` "latents": the frame's latents
    ``ctx`` (B, Fc, C, h, w; ``encode_batch``'s) warped at the latent's size instead, as the world's
    ``warp_space="latents"`` does. ``unseen``: also the share of each latent cell's pixels that frame did not see,
    float (B, Ft, h, w) (in latent space: 1 where the frame did not see the whole cell)."""
    from camworld.model.vae import frames_to_tensor
    from camworld.model.warp import nearest_sources, warp_frames

    if space not in WARP_SPACES[:2]:
        raise ValueError(f"warp_train_space must be one of {WARP_SPACES[:2]}, got {space!r}")
    slot = nearest_sources(batch.ctx_ext, batch.ctx_mask, batch.tgt_ext)                 # (B, Ft)
    B, Ft = slot.shape
    src_ext = np.take_along_axis(batch.ctx_ext, slot[:, :, None, None], axis=1)
    if space == "latents":
        if ctx is None:
            raise ValueError("a latent-space warp start needs the context latents (ctx)")
        src = ctx[torch.arange(B, device=ctx.device)[:, None], torch.as_tensor(slot, device=ctx.device)]
        z, hit = warp_frames(src.float(), src_ext, batch.tgt_ext, model.cfg.hfov_deg, 6.0, floor=True,
                             fill="smooth", seen=True)
        return (z, (~hit).float()) if unseen else z
    src = batch.ctx_frames[np.arange(B)[:, None], slot]                                   # (B, Ft, S, S, 3)
    w, hit = warp_frames(frames_to_tensor(src, device), src_ext, batch.tgt_ext, model.cfg.hfov_deg, 6.0, floor=True,
                         fill="smooth", seen=True)
    z = model.vae.encode(w.flatten(0, 1)) / model.cfg.latent_scale         # as the world encodes its start: unrounded
    z = z.reshape((B, Ft) + tuple(z.shape[1:]))
    if not unseen:
        return z
    miss = torch.nn.functional.adaptive_avg_pool2d((~hit).flatten(0, 1)[:, None].float(), z.shape[-2:])
    return z, miss.reshape(B, Ft, *z.shape[-2:])


@torch.no_grad()
def self_generated_context(dit, ctx, ctx_mask, ctx_ext, prompts, prob: float, steps: int,
                           generator: torch.Generator | None = None, shift: float = 1.0):
    """Rollout-aware training: for each sample with probability ``prob`` that has at least 2 valid
    context frames, the newest context latent ctx[:, -1] is replaced by what the network samples at
    that camera from the older context (ctx[:, :-1]; ``steps`` Euler steps from fresh noise, no
    gradient). In a free rollout every frame the model continues is one it generated; trained on clean
    context only, it has never seen that input. Returns (new ctx, (B,) bool: which samples changed);
    ``ctx`` itself is not modified."""
    B = ctx.shape[0]
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"self_ctx_prob must be in [0, 1], got {prob}")
    if steps < 1:
        raise ValueError(f"self_ctx_steps must be >= 1, got {steps}")
    draw = torch.rand(B, generator=generator, device=ctx.device) < prob
    pick = draw & ctx_mask[:, -2].bool() if ctx.shape[1] >= 2 else torch.zeros_like(draw)
    if not bool(pick.any()):
        return ctx, pick
    idx = pick.nonzero()[:, 0]
    was_training = dit.training
    dit.eval()
    try:
        state = dit.encode_context(ctx[idx, :-1], ctx_mask[idx, :-1], ctx_ext[idx, :-1],
                                   [prompts[i] for i in idx.tolist()])
        z = sample(dit, (len(idx), 1, *ctx.shape[2:]), ctx_ext[idx, -1:], state, steps=steps, shift=shift,
                   generator=generator, device=ctx.device)
    finally:
        dit.train(was_training)
    out = ctx.clone()
    out[idx, -1] = z[:, 0].to(ctx.dtype)
    return out, pick


# parameters a fine-tune may add to an --init checkpoint: zero-initialised, so the network starts as the old one
GROWABLE = ("cond_in.",)


def load_dit_init(dit: nn.Module, init: nn.Module):
    """Fine-tuning start: copy ``init``'s DiT weights; parameters the new config adds (``GROWABLE``,
    zero-initialised) keep their init. Any other mismatch is an error naming the keys."""
    try:
        missing, unexpected = dit.load_state_dict(init.state_dict(), strict=False)
    except RuntimeError as e:  # shapes differ: another width, depth or patch
        raise SystemExit(f"--init checkpoint does not fit the preset's DiT: {str(e).splitlines()[1:3]}") from e
    bad = [k for k in missing if not k.startswith(GROWABLE)] + list(unexpected)
    if bad:
        raise SystemExit(f"--init checkpoint does not fit the preset's DiT: {bad[:6]}")
    return missing


def encode_batch(model, batch, device):
    """A ``camworld.data.Batch`` -> (ctx (B, Fc, C, h, w) zero where masked, ctx_mask (B, Fc),
    ctx_ext (B, Fc, 3, 4), z0 (B, Ft, C, h, w), tgt_ext (B, Ft, 3, 4)) on ``device``."""
    B, Fc = batch.ctx_mask.shape
    Ft = batch.tgt_frames.shape[1]
    with torch.no_grad():
        frames = np.concatenate([batch.ctx_frames.reshape(-1, *batch.ctx_frames.shape[2:]),
                                 batch.tgt_frames.reshape(-1, *batch.tgt_frames.shape[2:])])
        z = model.encode(frames)                                          # (B*Fc + B*Ft, C, h, w)
    C, h, w = model.latent_shape
    ctx = z[: B * Fc].view(B, Fc, C, h, w)
    ctx = ctx * torch.as_tensor(batch.ctx_mask, device=device)[..., None, None, None]
    z0 = z[B * Fc:].view(B, Ft, C, h, w)
    t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    return ctx, t(batch.ctx_mask), t(batch.ctx_ext), z0, t(batch.tgt_ext)


def revisit_eval(model, dit, batch, device, seed: int = 0):
    """PSNR of generated targets vs ground truth on a fixed held-out batch, split by revisit."""
    ctx, mask, cext, z0, text = encode_batch(model, batch, device)
    g = torch.Generator(device=device).manual_seed(seed)
    saved = model.dit
    model.dit = dit
    try:
        z = model.generate(ctx, mask, cext, text, batch.prompts, generator=g)
    finally:
        model.dit = saved
    gen = model.decode(z.flatten(0, 1)).reshape(batch.tgt_frames.shape)
    scores = np.array([psnr(a, b) for a, b in zip(gen, batch.tgt_frames)])
    rv = batch.revisit
    return {"psnr_all": float(scores.mean()),
            "psnr_revisit": float(scores[rv].mean()) if rv.any() else float("nan"),
            "psnr_novel": float(scores[~rv].mean()) if (~rv).any() else float("nan")}, gen


def _dit_batch(step: int, *, seed: int, rank: int, tc, frame_size: int, text_dropout: float, source=None):
    """Everything random about one DiT step, drawn from the generator of (seed, step, rank): the batch
    (rendered by the sim, or read from recorded videos: ``source``, a ``recorded.RecordedSource``), which
    captions are dropped (classifier-free guidance) and the seed of the diffusion noise. A pure function of
    its arguments, so it runs in any process and resume stays exact. Module level, so the spawned render
    workers of ``BatchStream`` can unpickle it."""
    from camworld.data import batch_rng, sample_batch

    rng = batch_rng(seed, step, rank)
    batch = sample_batch(rng, tc, frame_size) if source is None else source.batch(rng, tc, frame_size)
    prompts = [None if rng.random() < text_dropout else p for p in batch.prompts]
    return batch, prompts, int(rng.integers(2**62))


def train_dit(run: DiTRunConfig, cfg, device) -> WorldModel:
    from camworld.data import sample_batch
    from camworld.train.recorded import prepare

    if run.steps is None:
        raise SystemExit("--stage dit needs --steps N")
    rank, world = dist_info()
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    if not run.vae:
        raise SystemExit("--stage dit needs --vae PATH (a checkpoint from --stage vae)")
    vae_model = WorldModel.load(run.vae, device=device)
    if vae_model.cfg.vae != cfg.vae:
        raise SystemExit(f"the VAE checkpoint's config {vae_model.cfg.vae} differs from the preset's {cfg.vae}")
    cfg.latent_scale = vae_model.cfg.latent_scale
    model = WorldModel(cfg).to(device)
    model.vae.load_state_dict(vae_model.vae.state_dict())
    model.vae.requires_grad_(False).eval()
    tc = cfg.train
    if tc.warp_train_space not in WARP_SPACES[:2]:
        raise SystemExit(f"train.warp_train_space must be one of {WARP_SPACES[:2]}, got {tc.warp_train_space!r}")
    opt = torch.optim.AdamW(model.dit.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.9, 0.99))
    ema = copy.deepcopy(model.dit).requires_grad_(False)
    disc, dopt = _discriminator(tc, cfg, world, device)
    aux = (disc, dopt) if disc is not None else None
    step = 0
    if run.resume:
        doc = load_train_state(out, model, opt, aux=aux)
        step = doc["step"]
        ema_path = out / "model.safetensors"
        ema.load_state_dict(WorldModel.load(ema_path, device=device).dit.state_dict())
    if run.init and not run.resume:
        load_dit_init(model.dit, WorldModel.load(run.init, device=device).dit)
        ema.load_state_dict(model.dit.state_dict())
    loss_mod = DiTLoss(model.dit, tc.ctx_noise_max, tc.self_ctx_prob, tc.self_ctx_steps, cfg.diffusion.shift,
                       tc.warp_train_prob, tc.warp_train_t_max)
    net = nn.parallel.DistributedDataParallel(loss_mod) if world > 1 else loss_mod
    log = CSVLog(out / "log.csv", ["step", "loss", "psnr_all", "psnr_revisit", "psnr_novel", "samples_per_s", "lr", "time"]
                 + (["sharp_all", "d_loss", "g_loss", "adv_w"] if aux else []))
    eval_cfg = copy.deepcopy(tc)
    eval_cfg.batch_size, eval_cfg.revisit_prob, eval_cfg.recent_only_prob = run.eval_batch, 0.5, 0.0
    source = prepare(run.data, out, run.resume, cfg, rank, world, threads=max(1, run.workers)) if run.data else None
    held_rng = np.random.default_rng([run.seed, 10**9])
    held = (sample_batch(held_rng, eval_cfg, cfg.frame_size, heldout=True) if source is None
            else source.batch(held_rng, eval_cfg, cfg.frame_size, heldout=True))
    total = run.steps
    bar = progress(total, step, rank != 0)
    t0, seen, run_loss = time.time(), 0, None
    make = functools.partial(_dit_batch, seed=run.seed, rank=rank, tc=tc, frame_size=cfg.frame_size,
                             text_dropout=cfg.diffusion.text_dropout, source=source)
    stream = BatchStream(make, run.workers)
    for batch, prompts, noise_seed in stream.iterate(step, total):
        ctx, mask, cext, z0, text = encode_batch(model, batch, device)
        g = torch.Generator(device=device).manual_seed(noise_seed)
        for grp in opt.param_groups:
            grp["lr"] = warmup_lr(step, tc.lr, tc.warmup)
        warp, unseen = (warp_start_latents(model, batch, device, unseen=True, space=tc.warp_train_space, ctx=ctx)
                        if tc.warp_train_prob > 0 else (None, None))
        extra = {}
        if disc is None:
            loss = net(ctx, mask, cext, z0, text, prompts, g, warp)
        else:
            loss, x0, use = net(ctx, mask, cext, z0, text, prompts, g, warp, parts=True)
            extra = _adversarial_dit(disc, dopt, z0[use], x0[use], loss, model.dit.final.weight,
                                     tc.dit_adv_weight if step >= tc.dit_adv_start else 0.0,
                                     unseen[use] if tc.dit_adv_unseen else None)
            loss = loss + extra.pop("g_term")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.dit.parameters(), tc.grad_clip)
        opt.step()
        decay = min(tc.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.dit.parameters()):
                pe.lerp_(p, 1 - decay)
        step += 1
        seen += tc.batch_size * world
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{run_loss:.4f}", sps=f"{seen / (time.time() - t0):.1f}")
        if rank == 0 and (step % run.log_every == 0 or step == total):
            metrics, gen = revisit_eval(model, ema, held, device)
            row = {"step": step, "loss": f"{run_loss:.5f}", **{k: f"{v:.2f}" for k, v in metrics.items()},
                   "samples_per_s": f"{seen / (time.time() - t0):.2f}",
                   "lr": f"{warmup_lr(step, tc.lr, tc.warmup):.2e}", "time": f"{time.time():.0f}"}
            if aux:
                from camworld.train.vae import recon_sharpness

                row.update({"sharp_all": f"{recon_sharpness(gen, held.tgt_frames):.3f}",
                            **{k: f"{v:.4f}" for k, v in extra.items()}})
            log.write(row)
            bar.write(f"step {step}: loss {run_loss:.4f} held-out PSNR all {metrics['psnr_all']:.2f} "
                      f"revisit {metrics['psnr_revisit']:.2f} novel {metrics['psnr_novel']:.2f}")
            save_sample_grid(out / "samples" / f"step{step:07d}.png", held, gen)
        if rank == 0 and (step % run.save_every == 0 or step == total):
            shipped = copy.deepcopy(model)
            shipped.dit.load_state_dict(ema.state_dict())
            shipped.save(out / "model", record={"stage": "dit", "step": step, "seed": run.seed, "world_size": world,
                                                "vae": str(run.vae), "data": data_record(run),
                                                "cameras": "planar" if source is None else source.cameras,
                                                "command": " ".join(sys.argv)})
            save_train_state(out, model, opt, step, {"stage": "dit", "seed": run.seed}, aux=aux)
    bar.close()
    stream.close()
    check_ranks_identical(model.dit)
    return model


def _discriminator(tc, cfg, world: int, device):
    """The latent patch discriminator of the adversarial term and its optimizer, or (None, None) when off."""
    from camworld.train.adversarial import PatchDiscriminator

    if tc.dit_adv_weight <= 0:
        return None, None
    if tc.warp_train_prob <= 0:
        raise SystemExit("train.dit_adv_weight judges the one-step prediction from the warp start: it needs "
                         "train.warp_train_prob > 0")
    if world > 1:
        raise SystemExit("train.dit_adv_weight: the adversarial DiT fine-tune trains in one process (no torchrun)")
    disc = PatchDiscriminator(tc.dit_disc_channels, in_channels=cfg.vae.latent_channels,
                              strides=tuple(int(s) for s in tc.dit_disc_strides)).to(device)
    return disc, torch.optim.AdamW(disc.parameters(), lr=tc.dit_disc_lr, betas=(0.5, 0.9), weight_decay=0.0)


def _adversarial_dit(disc, dopt, real, fake, flow, last, weight: float, unseen=None) -> dict:
    """``adversarial.adversarial_step`` on the warp-start samples' frames: encoded targets ``real`` against one-step
    predictions ``fake`` (n, Ft, C, h, w), ``unseen`` (n, Ft, h, w) or None; nothing (NaN in the log) when no sample
    started from the warp or none of them has an unseen cell to judge."""
    from camworld.train.adversarial import adversarial_step

    if len(real) == 0 or (unseen is not None and float(unseen.sum()) == 0.0):
        return {"d_loss": float("nan"), "g_loss": float("nan"), "adv_w": 0.0, "g_term": 0.0}
    return adversarial_step(disc, dopt, real.flatten(0, 1), fake.flatten(0, 1), flow, last, weight,
                            None if unseen is None else unseen.flatten(0, 1))


def save_sample_grid(path: Path, batch, gen):
    """Rows: newest context | ground truth targets | generated targets."""
    from camworld.viz import save_png

    rows = []
    for b in range(min(8, len(gen))):
        row = [batch.ctx_frames[b, -1]] + list(batch.tgt_frames[b]) + list(gen[b])
        rows.append(np.concatenate(row, 1))
    save_png(path, np.concatenate(rows, 0))
