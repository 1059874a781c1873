"""`camworld bench model`: one segment's sampling time against context size k.

The paper's Table 2 shows sampling slowing 2.0x from k=1 to k=30 (1.60 -> 0.79 fps). With
``context_self_only`` the context's keys/values are computed once per segment instead of once per
denoising step; this bench times both paths on the same weights in the same run and prints the
k=30 / k=1 ratio of each.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from camworld import threads
from camworld.geometry import planar_to_extrinsics

KS = (1, 5, 10, 20, 30)


def _segment_inputs(model, k: int, Ft: int):
    C, h, w = model.latent_shape
    dev = model.device
    rng = np.random.default_rng(0)
    ctx = torch.randn(1, k, C, h, w, device=dev)
    mask = torch.ones(1, k, dtype=torch.bool, device=dev)
    ext = torch.as_tensor(planar_to_extrinsics(rng.normal(size=(1, k + Ft, 3))), dtype=torch.float32, device=dev)
    return ctx, mask, ext


@torch.no_grad()
def _one_segment(model, inputs, k: int, Ft: int, cache: bool, seed: int) -> float:
    from camworld.model.diffusion import sample

    ctx, mask, ext = inputs
    C, h, w = model.latent_shape
    dev = model.device
    t0 = time.perf_counter()
    state = model.dit.encode_context(ctx, mask, ext[:, :k], ["a street"], cache=cache)
    sample(model.dit, (1, Ft, C, h, w), ext[:, k:], state, steps=model.cfg.diffusion.sample_steps,
           generator=torch.Generator(device=dev).manual_seed(seed), device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def time_segments(model, ks=KS, repeats: int = 5, frames: int | None = None, joint: bool = True) -> dict:
    """Median seconds to sample one segment (B = 1) for each k, cached and (if ``joint``) joint
    attention. Every configuration is warmed up first, then the repeats go round-robin over all of
    them, so drift of a shared machine (load, clocks) hits every k alike."""
    Ft = frames or model.cfg.train.target_frames
    configs = [(k, c) for k in ks for c in ((True, False) if joint else (True,))]
    inputs = {k: _segment_inputs(model, k, Ft) for k in ks}
    for k, c in configs:  # warm-up (allocator, kernels) for every shape
        _one_segment(model, inputs[k], k, Ft, c, seed=0)
    times = {cfg: [] for cfg in configs}
    for r in range(repeats):
        for k, c in configs:
            times[(k, c)].append(_one_segment(model, inputs[k], k, Ft, c, seed=r + 1))
    return {cfg: float(np.median(v)) for cfg, v in times.items()}


def bench_arguments(p):
    p.add_argument("--checkpoint", default=None, help="default: the shipped model (else a fresh cpu preset)")
    p.add_argument("--preset", default=None, help="time a freshly initialised preset instead")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--frames", type=int, default=None,
                   help="frames per segment (default: the model's frames per pass); longer segments amortise the "
                        "once-per-segment context encoding, as the paper's 77-frame segments do")
    p.add_argument("--device", default="auto")
    threads.add_argument(p)


def bench(args):
    from camworld.model import DEFAULT_CHECKPOINT, WorldModel, preset, resolve_device

    threads.apply(args.threads)
    dev = resolve_device(args.device)
    if args.preset or (args.checkpoint is None and not DEFAULT_CHECKPOINT.exists()):
        model = WorldModel(preset(args.preset or "cpu")).to(dev).eval()
        what = f"fresh '{model.cfg.preset}' preset"
    else:
        model = WorldModel.load(args.checkpoint, device=dev)
        what = f"checkpoint {args.checkpoint or DEFAULT_CHECKPOINT.name}"
    cfg = model.cfg
    frames = args.frames or cfg.train.target_frames
    print(f"{what} on {dev}: {cfg.diffusion.sample_steps} sampler steps, {frames} frames per segment")
    print("| k | cached context (s) | joint attention (s) | cached speed-up |")
    print("|---|---|---|---|")
    joint = bool(cfg.dit.context_self_only)
    t = time_segments(model, KS, repeats=args.repeats, frames=frames, joint=joint)
    rows = {}
    for k in KS:
        c, j = t[(k, True)], t.get((k, False), float("nan"))
        rows[k] = (c, j)
        print(f"| {k} | {c:.4f} | {j:.4f} | {j / c:.2f}x |", flush=True)
    c1, j1 = rows[KS[0]]
    c30, j30 = rows[KS[-1]]
    print(f"slow-down from k={KS[0]} to k={KS[-1]}: cached {c30 / c1:.2f}x, joint {j30 / j1:.2f}x "
          f"(paper Table 2: 2.03x; target with the cache: <= 1.3x)")
    return 0
