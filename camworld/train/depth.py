"""The depth stage: ``camworld.model.depth.DepthNet`` trained on the sim's own renders and z-depths (training
scenes only, free poses, any yaw), L1 on log depth. The learned world runs it on every memory frame it
reprojects (``ModelFrames``, ``diffusion.depth_net``), and those are generated frames as often as rendered
ones, blurrier than any render: ``blur`` is the share of training frames first shrunk by 2 or 4 and blown
up again (bilinear), so the depth it predicts for a soft frame is still a depth.

Writes OUT/depth.safetensors + depth.json (``DepthNet.save``; its record names the command, steps, seed and
the held-out error), OUT/train_state.* every ``save_every`` steps (``--resume`` continues exactly: the
batches are a pure function of (seed, step)), OUT/log.csv.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from camworld.model.depth import DepthNet
from camworld.train.runtime import BatchStream, CSVLog, RunConfig, load_train_state, progress, save_train_state

DEPTH_STEPS = 3000      # default steps
DEPTH_BATCH = 32        # frames per step (8 poses in each of 4 scenes)
DEPTH_LR = 2e-3


@dataclass
class DepthRunConfig(RunConfig):
    channels: int = 16          # DepthNet width (256k parameters at 16)
    blur: float = 0.5           # share of frames shrunk by 2 or 4 and blown up again (a generated frame's softness)
    size: int = 32              # the net's side: frames (rendered at frame_size) and depths are area-averaged to it
    frame_size: int = 64        # the world's frame side


def depth_batch(step: int, *, seed: int, batch_size: int, frame_size: int, blur: float, heldout: bool = False):
    """One step's frames uint8 (B, S, S, 3), log z-depths float32 (B, 1, S, S) and blur factors int (B,) (1: sharp),
    from the generator of (seed, step): random scenes, 8 free poses each. Pure and module level (the workers
    of ``BatchStream`` run it)."""
    from camworld.data import batch_rng
    from camworld.sim import EVAL_SEED_OFFSET, make_scene, render

    rng = batch_rng(seed, step) if not heldout else np.random.default_rng([seed, 10**9])
    offset = EVAL_SEED_OFFSET if heldout else 0
    xs, ds = [], []
    while sum(len(x) for x in xs) < batch_size:
        scene = make_scene(int(offset + rng.integers(0, EVAL_SEED_OFFSET)))
        poses = np.stack([scene.sample_free_pose(rng) for _ in range(8)])
        rgb, dep = render(scene, poses, frame_size, frame_size)
        xs.append(rgb)
        ds.append(dep)
    factors = np.where(rng.random(batch_size) < blur, rng.choice([2, 4], batch_size), 1)
    return (np.concatenate(xs)[:batch_size], np.log(np.concatenate(ds)[:batch_size])[:, None].astype(np.float32),
            factors)


def soften(x: torch.Tensor, factors) -> torch.Tensor:
    """Frames (B, 3, S, S) with frame i shrunk by factors[i] (area) and blown up again (bilinear); 1: as is."""
    out = x.clone()
    S = x.shape[-1]
    for f in (2, 4):
        sel = torch.as_tensor(np.asarray(factors) == f)
        if sel.any():
            small = F.avg_pool2d(x[sel], f)
            out[sel] = F.interpolate(small, size=(S, S), mode="bilinear", align_corners=False)
    return out


def net_inputs(frames, logd, factors, size: int, device):
    """A batch as the net sees it: softened frames (B, 3, s, s) area-averaged to its size s, and the log of the
    area-averaged depth (B, 1, s, s) (``camworld.model.depth.depth_of`` shrinks the world's frames the same way)."""
    from camworld.model.vae import frames_to_tensor

    x = soften(frames_to_tensor(frames, device), factors)
    f = x.shape[-1] // size
    d = torch.as_tensor(logd, device=device).exp()
    return (F.avg_pool2d(x, f), F.avg_pool2d(d, f).log()) if f > 1 else (x, d.log())


def log_depth_error(net: DepthNet, held, device) -> float:
    """Mean |log predicted - log true| z-depth on held-out frames (sharp and softened as the batch says)."""
    x, d = net_inputs(*held, net.size, device)
    was = net.training
    net.eval()
    with torch.no_grad():
        pred = net(x)
    net.train(was)
    return float((pred - d).abs().mean())


def train_depth(run: DepthRunConfig, device) -> DepthNet:
    if not 0.0 <= run.blur <= 1.0:
        raise SystemExit(f"--depth-blur must be in [0, 1], got {run.blur}")
    if run.size % 8 or run.frame_size % run.size:
        raise SystemExit(f"--depth-size must be a multiple of 8 that divides the frame size {run.frame_size}, "
                         f"got {run.size}")
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(run.seed)
    net = DepthNet(run.channels, run.size).to(device)
    if run.init:
        from camworld.model.depth import load_depth_net

        init = load_depth_net(run.init, device)
        if (init.channels, init.size) != (run.channels, run.size):
            raise SystemExit(f"--init depth net has {init.channels} channels at size {init.size}; --depth-channels "
                             f"and --depth-size say {run.channels} and {run.size}")
        net.load_state_dict(init.state_dict())
    opt = torch.optim.AdamW(net.parameters(), DEPTH_LR)
    total = int(run.steps or DEPTH_STEPS)
    step = load_train_state(out, net, opt)["step"] if run.resume else 0
    log = CSVLog(out / "log.csv", ["step", "loss", "heldout_log_error", "frames_per_s", "time"])
    make = functools.partial(depth_batch, seed=run.seed, batch_size=DEPTH_BATCH, frame_size=run.frame_size,
                             blur=run.blur)
    held = make(0, heldout=True)
    bar = progress(total, step, False)
    stream = BatchStream(make, run.workers)
    t0, seen = time.time(), 0
    for frames, logd, factors in stream.iterate(step, total):
        for g in opt.param_groups:   # constant, then linear decay over the last 30%
            g["lr"] = DEPTH_LR * min(1.0, (total - step) / (0.3 * total))
        x, d = net_inputs(frames, logd, factors, run.size, device)
        loss = (net(x) - d).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += len(frames)
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % run.log_every == 0 or step == total:
            err = log_depth_error(net, held, device)
            log.write({"step": step, "loss": f"{loss.item():.5f}", "heldout_log_error": f"{err:.4f}",
                       "frames_per_s": f"{seen / (time.time() - t0):.1f}", "time": f"{time.time():.0f}"})
            bar.write(f"step {step}: loss {loss.item():.4f} held-out |log depth error| {err:.4f}")
        if step % run.save_every == 0 or step == total:
            save_train_state(out, net, opt, step, {"stage": "depth", "seed": run.seed, "channels": run.channels,
                                                    "size": run.size, "blur": run.blur})
    bar.close()
    stream.close()
    err = log_depth_error(net, held, device)
    net.save(out / "depth", record={
        "command": " ".join(sys.argv), "stage": "depth", "steps": total, "batch": DEPTH_BATCH, "seed": run.seed,
        "blur": run.blur, "size": run.size, "scenes": "training seeds (below the held-out offset), 8 free poses each",
        "loss": "L1 on log z-depth", "lr": f"{DEPTH_LR} AdamW, linear decay over the last 30%",
        "held_out_log_error": round(err, 4),
        "held_out": "32 frames of held-out scenes, softened as in training"})
    return net.eval()
