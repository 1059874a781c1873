"""``camworld train`` and ``camworld bench train``: argparse arguments -> the stages' config
dataclasses, then one call. Nothing here trains."""

from __future__ import annotations

import argparse
import json

from camworld.model import preset
from camworld.train.depth import DepthRunConfig, train_depth
from camworld.train.refine import RefineRunConfig, train_refine
from camworld.train.dit import DiTRunConfig, train_dit
from camworld.train.merge import ExportConfig, export_checkpoint
from camworld.train.recorded import DataConfig
from camworld.train.runtime import apply_overrides, session
from camworld.train.throughput import BenchConfig, measure_throughput
from camworld.train.vae import VAERunConfig, train_vae

DESCRIPTION = ("Training: the VAE stage, then the DiT stage (paper Algorithm 1), on data rendered on the fly or on "
               "recorded posed videos (--data DIR).")


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--stage", choices=["vae", "dit", "export", "depth", "refine"], required=True,
                   help="vae, then dit; export merges a DiT run (--dit) with a fine-tuned decoder (--vae); depth "
                        "trains the warp's depth net (camworld.model.depth) on the sim's depths; refine trains the "
                        "net that repairs what no context frame saw (camworld.model.refine) on a world's own frames")
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
                   help="processes that make batches ahead (0 = inline; same batches either way); with --data "
                        "also the threads that check the videos at the start")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="train on recorded posed videos (a camworld.posed-videos folder, docs/DATA.md) instead of "
                        "rendering on the fly")
    p.add_argument("--data-stride", type=int, default=0,
                   help="--data: video frames per model frame (0 = from each video's fps and train.frame_stride)")
    p.add_argument("--data-reverse", type=float, default=0.5,
                   help="--data: share of windows played backwards (0 for scenes that move)")
    p.add_argument("--data-cache-mb", type=int, default=1024,
                   help="--data: keep decoded videos in memory when all of them fit in this (per process)")
    p.add_argument("--skip-bad", action="store_true",
                   help="--data: leave corrupt, truncated or inconsistent videos out (counted) instead of stopping")
    p.add_argument("--depth-channels", type=int, default=16, help="--stage depth: the depth net's width")
    p.add_argument("--depth-size", type=int, default=32,
                   help="--stage depth: the side the net runs at (frames and depths are area-averaged to it)")
    p.add_argument("--depth-blur", type=float, default=0.5,
                   help="--stage depth: share of training frames softened like generated ones (0: renders only)")
    p.add_argument("--refine-channels", type=int, default=16, help="--stage refine: the refine net's width")
    p.add_argument("--refine-world", default=None,
                   help="--stage refine: the world-model checkpoint whose frames it learns to repair (default: shipped)")
    p.add_argument("--refine-episodes", type=int, default=48,
                   help="--stage refine: teacher-forced training episodes per driver (12 env steps each)")
    p.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="override preset fields, e.g. train.batch_size=8 dit.ray_embedding=false")


def data_config(args):
    if not args.data:
        return None
    return DataConfig(root=args.data, stride=args.data_stride, reverse_prob=args.data_reverse, skip_bad=args.skip_bad,
                      cache_mb=args.data_cache_mb)


def _common(args) -> dict:
    return dict(out=args.out, steps=args.steps, seed=args.seed, resume=args.resume, init=args.init,
                device=args.device, threads=args.threads, log_every=args.log_every, save_every=args.save_every,
                workers=args.workers, data=data_config(args))


def vae_run_config(args) -> VAERunConfig:
    return VAERunConfig(**_common(args), freeze_encoder=args.freeze_encoder)


def dit_run_config(args) -> DiTRunConfig:
    return DiTRunConfig(**_common(args), vae=args.vae, eval_batch=args.eval_batch)


def depth_run_config(args) -> DepthRunConfig:
    if args.data:
        raise SystemExit("--stage depth trains on the sim's depths; recorded videos have none (drop --data)")
    return DepthRunConfig(**_common(args), channels=args.depth_channels, blur=args.depth_blur,
                          size=args.depth_size)


def refine_run_config(args) -> RefineRunConfig:
    if args.data:
        raise SystemExit("--stage refine trains on a world's frames in sim scenes (drop --data)")
    if args.refine_episodes < 1:
        raise SystemExit(f"--refine-episodes must be >= 1, got {args.refine_episodes}")
    return RefineRunConfig(**_common(args), channels=args.refine_channels, world=args.refine_world,
                           episodes=args.refine_episodes)


def export_config(args) -> ExportConfig:
    return ExportConfig(dit=args.dit, out=args.out, vae=args.vae, half=args.half,
                        record=json.loads(args.record or "{}"), overrides=tuple(args.set))


def run(args):
    if args.stage == "export":
        return export(args)
    if args.stage == "depth":
        run_cfg = depth_run_config(args)
        with session(run_cfg) as device:
            train_depth(run_cfg, device)
        return 0
    if args.stage == "refine":
        run_cfg = refine_run_config(args)
        with session(run_cfg) as device:
            train_refine(run_cfg, device)
        return 0
    run_cfg = (vae_run_config if args.stage == "vae" else dit_run_config)(args)
    cfg = apply_overrides(preset(args.preset), args.set)
    with session(run_cfg) as device:
        (train_vae if args.stage == "vae" else train_dit)(run_cfg, cfg, device)
    return 0


def export(args):
    export_checkpoint(export_config(args))
    return 0


def bench_arguments(p):
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--device", default="auto")


def bench(args):
    measure_throughput(BenchConfig(preset=args.preset, steps=args.steps, batch_size=args.batch_size,
                                   device=args.device))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="camworld.train", description=DESCRIPTION)
    add_arguments(p)
    return run(p.parse_args(argv))
