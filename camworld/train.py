"""Training: the VAE stage, then the DiT stage (paper Algorithm 1), on data rendered on the fly.

    camworld train --stage vae --preset cpu --out runs/vae
    camworld train --stage dit --preset cpu --vae runs/vae/model.safetensors --out runs/dit
    torchrun --nproc_per_node 2 -m camworld.train --stage dit ...   # data-parallel (DDP)

A run folder holds ``model.safetensors/.json`` (a complete, loadable WorldModel checkpoint, EMA
weights), ``train_state.safetensors`` + ``train_state.json`` (raw weights, optimizer, step: for
``--resume``), ``log.csv`` and ``samples/``. Every file is written atomically; the JSON state is
written last and names the step, so an interrupted save is never mistaken for a complete one.
The data stream is a pure function of (data seed, step, rank), so ``--resume`` continues exactly.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from camworld.model import WorldModel, preset, resolve_device
from camworld.model.diffusion import flow_loss, noise_context
from camworld.model.vae import frames_to_tensor
from camworld.metrics import psnr, ssim
from camworld.model.world_model import _atomic

# ---------------------------------------------------------------- distributed helpers


def dist_info():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_ranks_identical(module: nn.Module) -> bool:
    """DDP sanity check: every rank must hold bit-identical weights. Raises if not."""
    rank, world = dist_info()
    if world == 1:
        return True
    flat = torch.cat([p.detach().double().flatten() for p in module.parameters()]).cpu()
    stats = torch.stack([flat.sum(), (flat * torch.arange(1, len(flat) + 1, dtype=torch.float64)).sum()])
    gathered = [torch.zeros_like(stats) for _ in range(world)]
    dist.all_gather(gathered, stats)
    if not all(torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"DDP ranks diverged: weight checksums {[g.tolist() for g in gathered]}")
    if rank == 0:
        print(f"DDP check: all {world} ranks hold identical weights", flush=True)
    return True


def init_distributed(device: torch.device):
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist_info()


# ---------------------------------------------------------------- state io


def save_train_state(out: Path, model: nn.Module, opt, step: int, extra: dict):
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    osd = opt.state_dict()
    for pid, st in osd["state"].items():
        for key, val in st.items():
            tensors[f"optim.{pid}.{key}"] = torch.as_tensor(val).detach().cpu().contiguous().clone()
    meta = {"step": str(step)}
    _atomic(out / "train_state.safetensors", lambda tmp: save_file(tensors, tmp, metadata=meta))
    doc = {"step": step, "param_groups": osd["param_groups"], **extra}
    _atomic(out / "train_state.json", lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))


def load_train_state(out: Path, model: nn.Module, opt):
    from safetensors import safe_open
    from safetensors.torch import load_file

    jpath, tpath = out / "train_state.json", out / "train_state.safetensors"
    if not (jpath.exists() and tpath.exists()):
        raise FileNotFoundError(f"--resume: no training state in {out} (expected {jpath.name} and {tpath.name})")
    doc = json.loads(jpath.read_text())
    with safe_open(str(tpath), "pt") as f:
        if int(f.metadata().get("step", -1)) != doc["step"]:
            raise ValueError(f"{tpath} and {jpath} disagree on the step: the last save was interrupted")
    tensors = load_file(str(tpath))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, key = k.split(".", 2)
            state.setdefault(int(pid), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    return doc


class CSVLog:
    def __init__(self, path: Path, fields):
        self.path, self.fields = path, fields
        if not path.exists():
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict):
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])


def _lr(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, (step + 1) / max(1, warmup))


def _progress(total, initial, disable):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, disable=disable, dynamic_ncols=True, smoothing=0.05)


# ---------------------------------------------------------------- VAE stage


def train_vae(args, cfg, device):
    from camworld.data import vae_batch

    rank, world = dist_info()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = WorldModel(cfg).to(device)
    if args.init:  # e.g. decoder fine-tuning: start from a trained VAE and keep its latent scale
        init = WorldModel.load(args.init, device=device)
        if init.cfg.vae != cfg.vae:
            raise SystemExit(f"--init VAE config {init.cfg.vae} differs from the preset's {cfg.vae}")
        model.vae.load_state_dict(init.vae.state_dict())
        model.cfg.latent_scale = cfg.latent_scale = init.cfg.latent_scale
    vae = model.vae.to(memory_format=torch.channels_last)
    if args.freeze_encoder:
        if not args.init:
            raise SystemExit("--freeze-encoder needs --init PATH (the VAE whose latent space the DiT uses)")
        # the latent space stays fixed (a DiT trained on it stays valid); only the decoder improves
        vae.encoder.requires_grad_(False)
    net = nn.parallel.DistributedDataParallel(vae) if world > 1 else vae
    tc = cfg.train
    opt = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=tc.vae_lr, weight_decay=0.0)
    step = 0
    if args.resume:
        step = load_train_state(out, model, opt)["step"]
    log = CSVLog(out / "log.csv", ["step", "loss", "psnr_train", "psnr_heldout", "samples_per_s", "time"])
    total = args.steps or tc.vae_steps
    held = vae_batch(np.random.default_rng([args.seed, 10**9]), 64, cfg.frame_size, heldout=True)
    bar = _progress(total, step, rank != 0)
    t0, seen = time.time(), 0
    while step < total:
        frames = vae_batch(np.random.default_rng([args.seed, step, rank]), tc.vae_batch_size, cfg.frame_size)
        x = frames_to_tensor(frames, device).contiguous(memory_format=torch.channels_last)
        for g in opt.param_groups:
            g["lr"] = tc.vae_lr * min(1.0, (step + 1) / 100) * (0.1 if step > 0.8 * total else 1.0)
        loss, recon = net(x)  # VAE.forward is its loss, so DDP syncs gradients
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        seen += len(frames) * world
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", sps=f"{seen / (time.time() - t0):.0f}")
        if rank == 0 and (step % args.log_every == 0 or step == total):
            vae.eval()
            rec = model.decode(model.encode(held))  # both apply the current latent scale
            vae.train()
            p_train = psnr(((recon.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy(), frames)
            p_held = float(np.mean([psnr(a, b) for a, b in zip(rec, held)]))
            log.write({"step": step, "loss": f"{loss.item():.5f}", "psnr_train": f"{p_train:.2f}",
                       "psnr_heldout": f"{p_held:.2f}", "samples_per_s": f"{seen / (time.time() - t0):.1f}",
                       "time": f"{time.time():.0f}"})
            bar.write(f"step {step}: loss {loss.item():.4f} held-out PSNR {p_held:.2f} dB")
        if rank == 0 and (step % args.save_every == 0 or step == total):
            _finish_vae(model, held, device, out, args, step)
            save_train_state(out, model, opt, step, {"stage": "vae", "seed": args.seed})
    bar.close()
    check_ranks_identical(vae)
    return model


def _finish_vae(model, held, device, out, args, step):
    """Set the latent scale from data and write a loadable checkpoint (the DiT part is untrained)."""
    with torch.no_grad():
        model.vae.eval()
        z = model.vae.encode(frames_to_tensor(held, device))
        model.vae.train()
    if not args.freeze_encoder:
        model.cfg.latent_scale = float(z.std().item())
    rec = model.decode(z / model.cfg.latent_scale)
    metrics = reconstruction_metrics(rec, held)
    model.save(out / "model", record={"stage": "vae", "step": step, "seed": args.seed,
                                      "command": " ".join(sys.argv), "vae_heldout": metrics})


def reconstruction_metrics(rec: np.ndarray, ref: np.ndarray) -> dict:
    return {"psnr": float(np.mean([psnr(a, b) for a, b in zip(rec, ref)])),
            "ssim": float(np.mean([ssim(a, b) for a, b in zip(rec, ref)]))}


# ---------------------------------------------------------------- DiT stage


class DiTLoss(nn.Module):
    """Wraps encode_context + flow loss in one forward, so DDP sees a single call. With
    ``ctx_noise_max`` > 0 each sample's context latents are noised to a flow time drawn from
    U(0, ctx_noise_max), which the network is told (context noise augmentation)."""

    def __init__(self, dit, ctx_noise_max: float = 0.0):
        super().__init__()
        self.dit = dit
        self.ctx_noise_max = float(ctx_noise_max)

    def forward(self, ctx, ctx_mask, ctx_ext, z0, tgt_ext, prompts, generator):
        ctx_t = None
        if self.ctx_noise_max > 0:
            ctx_t = torch.rand(ctx.shape[0], generator=generator, device=ctx.device) * self.ctx_noise_max
            ctx = noise_context(ctx, ctx_mask, ctx_t, generator)
        state = self.dit.encode_context(ctx, ctx_mask, ctx_ext, prompts, ctx_t=ctx_t)
        return flow_loss(self.dit, z0, tgt_ext, state, generator)


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
    B, Fc = batch.ctx_mask.shape
    Ft = batch.tgt_frames.shape[1]
    with torch.no_grad():
        frames = np.concatenate([batch.ctx_frames.reshape(-1, *batch.ctx_frames.shape[2:]),
                                 batch.tgt_frames.reshape(-1, *batch.tgt_frames.shape[2:])])
        z = model.encode(frames)
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


def _dit_batch(seed: int, step: int, rank: int, tc, frame_size: int, text_dropout: float):
    """Everything random about one DiT step, drawn from the generator of (seed, step, rank): the rendered
    batch, which captions are dropped (classifier-free guidance) and the seed of the diffusion noise.
    A pure function of its arguments, so it runs in any process and resume stays exact."""
    from camworld.data import batch_rng, sample_batch

    rng = batch_rng(seed, step, rank)
    batch = sample_batch(rng, tc, frame_size)
    prompts = [None if rng.random() < text_dropout else p for p in batch.prompts]
    return batch, prompts, int(rng.integers(2**62))


class BatchStream:
    """The training data stream, in step order. With ``workers > 0`` batches are rendered ahead in a
    process pool (a bounded window of ``2 * workers`` steps); with 0 they are rendered inline. Both give
    the very same batches, since each one depends only on (seed, step, rank)."""

    def __init__(self, seed: int, rank: int, tc, frame_size: int, text_dropout: float, workers: int = 0):
        self.args = (seed, rank, tc, frame_size, text_dropout)
        self.workers = max(0, int(workers))
        self.pool = None
        if self.workers:
            import multiprocessing as mp

            # spawn: a forked child of a process that holds CUDA or OpenMP state can hang
            self.pool = mp.get_context("spawn").Pool(self.workers)

    def _task(self, step):
        seed, rank, tc, fs, drop = self.args
        return (seed, step, rank, tc, fs, drop)

    def iterate(self, start: int, stop: int):
        if self.pool is None:
            for step in range(start, stop):
                yield _dit_batch(*self._task(step))
            return
        from collections import deque

        ahead, nxt = deque(), start
        while nxt < stop or ahead:
            while nxt < stop and len(ahead) < 2 * self.workers:
                ahead.append(self.pool.apply_async(_dit_batch, self._task(nxt)))
                nxt += 1
            yield ahead.popleft().get()

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def train_dit(args, cfg, device):
    from camworld.data import sample_batch

    rank, world = dist_info()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.vae:
        raise SystemExit("--stage dit needs --vae PATH (a checkpoint from --stage vae)")
    vae_model = WorldModel.load(args.vae, device=device)
    if vae_model.cfg.vae != cfg.vae:
        raise SystemExit(f"the VAE checkpoint's config {vae_model.cfg.vae} differs from the preset's {cfg.vae}")
    cfg.latent_scale = vae_model.cfg.latent_scale
    model = WorldModel(cfg).to(device)
    model.vae.load_state_dict(vae_model.vae.state_dict())
    model.vae.requires_grad_(False).eval()
    tc = cfg.train
    opt = torch.optim.AdamW(model.dit.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.9, 0.99))
    ema = copy.deepcopy(model.dit).requires_grad_(False)
    step = 0
    if args.resume:
        doc = load_train_state(out, model, opt)
        step = doc["step"]
        ema_path = out / "model.safetensors"
        ema.load_state_dict(WorldModel.load(ema_path, device=device).dit.state_dict())
    if args.init and not args.resume:
        load_dit_init(model.dit, WorldModel.load(args.init, device=device).dit)
        ema.load_state_dict(model.dit.state_dict())
    loss_mod = DiTLoss(model.dit, tc.ctx_noise_max)
    net = nn.parallel.DistributedDataParallel(loss_mod) if world > 1 else loss_mod
    log = CSVLog(out / "log.csv", ["step", "loss", "psnr_all", "psnr_revisit", "psnr_novel", "samples_per_s", "lr", "time"])
    eval_cfg = copy.deepcopy(tc)
    eval_cfg.batch_size, eval_cfg.revisit_prob, eval_cfg.recent_only_prob = args.eval_batch, 0.5, 0.0
    held = sample_batch(np.random.default_rng([args.seed, 10**9]), eval_cfg, cfg.frame_size, heldout=True)
    total = args.steps
    bar = _progress(total, step, rank != 0)
    t0, seen, run_loss = time.time(), 0, None
    stream = BatchStream(args.seed, rank, tc, cfg.frame_size, cfg.diffusion.text_dropout, args.workers)
    for batch, prompts, noise_seed in stream.iterate(step, total):
        ctx, mask, cext, z0, text = encode_batch(model, batch, device)
        g = torch.Generator(device=device).manual_seed(noise_seed)
        for grp in opt.param_groups:
            grp["lr"] = _lr(step, tc.lr, tc.warmup)
        loss = net(ctx, mask, cext, z0, text, prompts, g)
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
        if rank == 0 and (step % args.log_every == 0 or step == total):
            metrics, gen = revisit_eval(model, ema, held, device)
            log.write({"step": step, "loss": f"{run_loss:.5f}", **{k: f"{v:.2f}" for k, v in metrics.items()},
                       "samples_per_s": f"{seen / (time.time() - t0):.2f}", "lr": f"{_lr(step, tc.lr, tc.warmup):.2e}",
                       "time": f"{time.time():.0f}"})
            bar.write(f"step {step}: loss {run_loss:.4f} held-out PSNR all {metrics['psnr_all']:.2f} "
                      f"revisit {metrics['psnr_revisit']:.2f} novel {metrics['psnr_novel']:.2f}")
            save_sample_grid(out / "samples" / f"step{step:07d}.png", held, gen)
        if rank == 0 and (step % args.save_every == 0 or step == total):
            shipped = copy.deepcopy(model)
            shipped.dit.load_state_dict(ema.state_dict())
            shipped.save(out / "model", record={"stage": "dit", "step": step, "seed": args.seed, "world_size": world,
                                                "vae": str(args.vae), "command": " ".join(sys.argv)})
            save_train_state(out, model, opt, step, {"stage": "dit", "seed": args.seed})
    bar.close()
    stream.close()
    check_ranks_identical(model.dit)
    return model


def save_sample_grid(path: Path, batch, gen):
    """Rows: newest context | ground truth targets | generated targets."""
    from camworld.viz import save_png

    rows = []
    for b in range(min(8, len(gen))):
        row = [batch.ctx_frames[b, -1]] + list(batch.tgt_frames[b]) + list(gen[b])
        rows.append(np.concatenate(row, 1))
    save_png(path, np.concatenate(rows, 0))


# ---------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--stage", choices=["vae", "dit", "export"], required=True,
                   help="vae, then dit; export merges a DiT run (--dit) with a fine-tuned decoder (--vae)")
    p.add_argument("--preset", default="cpu", help="model preset: tiny | cpu | gpu")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, samples/); export: file stem")
    p.add_argument("--vae", help="VAE checkpoint for --stage dit / decoder for --stage export")
    p.add_argument("--dit", help="--stage export: the DiT run's model.safetensors")
    p.add_argument("--half", action="store_true", help="--stage export: store float16 weights")
    p.add_argument("--record", default=None, help="--stage export: extra JSON merged into the record")
    p.add_argument("--init", help="initialise the stage's network from this checkpoint (fine-tuning)")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="--stage vae: train only the decoder (keeps the latent space of --init fixed)")
    p.add_argument("--steps", type=int, default=None, help="total optimisation steps (vae default: preset)")
    p.add_argument("--seed", type=int, default=0, help="data seed (scene/trajectory stream)")
    p.add_argument("--resume", action="store_true", help="continue exactly from the run folder's last save")
    p.add_argument("--device", default="auto")
    p.add_argument("--log-every", type=int, default=200)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--eval-batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--workers", type=int, default=0,
                   help="--stage dit: processes that render batches ahead (0 = inline; same batches either way)")
    p.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="override preset fields, e.g. train.batch_size=8 dit.ray_embedding=false")


def apply_overrides(cfg, items):
    for item in items:
        key, _, value = item.partition("=")
        section, _, field = key.partition(".")
        target = getattr(cfg, section, None)
        if target is None or not hasattr(target, field):
            raise SystemExit(f"--set {item}: unknown field '{key}'")
        old = getattr(target, field)
        if isinstance(old, bool):
            new = value.lower() in ("1", "true", "yes")
        elif isinstance(old, tuple):
            new = tuple(type(old[0])(v) if old else float(v) for v in value.split(","))
        else:
            new = type(old)(value)
        setattr(target, field, new)
    return cfg


def run(args):
    if args.stage == "export":
        return export(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":  # TF32 matmuls: ~free speed on Ampere+, far inside the diffusion noise
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    init_distributed(device)
    cfg = apply_overrides(preset(args.preset), args.set)
    if args.stage == "dit" and args.steps is None:
        raise SystemExit("--stage dit needs --steps N")
    torch.manual_seed(args.seed)
    (train_vae if args.stage == "vae" else train_dit)(args, cfg, device)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


# ---------------------------------------------------------------- export


def export(args):
    """Merge a DiT run with a (decoder-fine-tuned) VAE of the same latent space into one shipped
    checkpoint: float16 safetensors + JSON with the full training record."""
    dit = WorldModel.load(args.dit, device="cpu")
    vae = WorldModel.load(args.vae, device="cpu") if args.vae else dit
    for (k, a), (_, b) in zip(dit.vae.encoder.state_dict().items(), vae.vae.encoder.state_dict().items()):
        if not torch.equal(a, b):
            raise SystemExit(f"--vae has a different encoder ({k}): its latent space is not the DiT's; "
                             "fine-tune the decoder with --freeze-encoder")
    if vae.cfg.latent_scale != dit.cfg.latent_scale:
        raise SystemExit("--vae has a different latent scale from the DiT's VAE")
    dit.vae.decoder.load_state_dict(vae.vae.decoder.state_dict())
    for item in args.set:  # sampling settings only: they are not trained, so the export may choose them
        if not item.startswith("diffusion."):
            raise SystemExit(f"--stage export --set {item}: only diffusion.* (sampling) settings can change at export")
    apply_overrides(dit.cfg, args.set)
    rec_dit = json.loads(Path(args.dit).with_suffix(".json").read_text())["record"]
    rec_vae = json.loads(Path(args.vae).with_suffix(".json").read_text())["record"] if args.vae else {}
    record = {"dit": rec_dit, "vae": rec_vae, "export_command": " ".join(sys.argv), **json.loads(args.record or "{}")}
    path = dit.save(args.out, record=record, dtype=torch.float16 if args.half else torch.float32)
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.1f} MiB) and {path.with_suffix('.json').name}")
    return 0


# `camworld bench train`: samples/s of the DiT stage

def bench_arguments(p):
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--device", default="auto")


def bench(args):
    from camworld.data import batch_rng, sample_batch

    cfg = preset(args.preset)
    if args.batch_size:
        cfg.train.batch_size = args.batch_size
    model = WorldModel(cfg).to(resolve_device(args.device))
    opt = torch.optim.AdamW(model.dit.parameters(), lr=1e-4)
    tc = cfg.train
    times = {"data": [], "step": []}
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        batch = sample_batch(batch_rng(0, step), tc, cfg.frame_size)
        ctx, mask, cext, z0, text = encode_batch(model, batch, model.device)
        t1 = time.perf_counter()
        loss = DiTLoss(model.dit)(ctx, mask, cext, z0, text, batch.prompts, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if step:  # skip warm-up
            times["data"].append(t1 - t0)
            times["step"].append(t2 - t1)
    d, s = np.median(times["data"]), np.median(times["step"])
    print(f"preset {args.preset} on {model.device}: batch {tc.batch_size}, up to {tc.context_frames} context + "
          f"{tc.target_frames} target frames (fresh weights; cold scene caches, as at the start of a run)")
    print(f"  data (render + retrieve + encode): {d * 1000:.0f} ms/batch")
    print(f"  optimisation step:                  {s * 1000:.0f} ms/batch")
    print(f"  throughput: {tc.batch_size / (d + s):.1f} samples/s  (data share {d / (d + s):.0%})")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="camworld.train", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
