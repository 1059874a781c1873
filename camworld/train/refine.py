"""The refine stage: ``camworld.model.refine.RefineNet`` trained on the learned world's own frames.

Data: the world model (``--world``, default the shipped checkpoint) is run teacher-forced on training scenes
(below the held-out seed offset), driven at env speed by the fidelity benchmark's drivers (``discrete``,
``continuous``, ``pose``), with ground truth in memory: each pass records its decoded frames, the paste's
composite (filled where it holds no pixel) and its masks (``ModelFrames.record_parts``), and the sim's frames
are the targets. The examples are made once and kept in OUT/data.npz (with the settings that made them), so a
resumed run trains on the same data. Loss: L1 on the pixels no context frame saw (the only ones the net
changes), batches a pure function of (seed, step).

Writes OUT/refine.safetensors + refine.json (``RefineNet.save``; its record names the command, steps, seed,
data and the held-out figures), OUT/train_state.* every ``save_every`` steps (``--resume`` continues exactly),
OUT/log.csv.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from camworld.model.refine import RefineNet
from camworld.train.runtime import CSVLog, RunConfig, load_train_state, progress, save_train_state

REFINE_STEPS = 3000
REFINE_BATCH = 32
REFINE_LR = 1e-3
DRIVERS = ("discrete", "continuous", "pose")


@dataclass
class RefineRunConfig(RunConfig):
    channels: int = 16          # RefineNet width
    world: str | None = None    # the world-model checkpoint whose frames it repairs (None: the shipped one)
    episodes: int = 48          # training episodes per driver (each `ep_steps` env steps of 4 frames)
    ep_steps: int = 12
    heldout_episodes: int = 4   # held-out episodes per driver (scored in the log)


def world_examples(model, drivers, episodes: int, steps: int, seed: int, heldout: bool, batch: int = 16,
                   show: bool = True) -> dict:
    """Teacher-forced passes of the learned world (default settings) -> uint8 decoded / composite / target
    (N, S, S, 3) and bool seen / filled (N, S, S), one row per generated frame."""
    from camworld import fidelity
    from camworld.world import World

    S = model.cfg.frame_size
    parts = {k: [] for k in ("decoded", "composite", "seen", "filled", "target")}
    for driver in drivers:
        drives = fidelity.make_drives(driver, episodes, steps, S, seed=seed, heldout=heldout)
        for a in range(0, len(drives), batch):
            group = drives[a:a + batch]
            world = World(model, num_worlds=len(group), device=model.device, refine=False)
            world.source.record_parts = True
            for i, d in enumerate(group):
                world.reset(i, d.gt[0], d.poses[0], prompt=d.prompt, seed=seed + a + i)
            poses = np.stack([d.poses for d in group])
            chunk = world.frames_per_pass
            for j in range(1, poses.shape[1], chunk):
                sl = slice(j, min(poses.shape[1], j + chunk))
                world.step(poses[:, sl], append=False)
                got = world.source.last_parts
                for k in ("decoded", "composite", "seen", "filled"):
                    parts[k].append(got[k].reshape((-1,) + got[k].shape[2:]))
                parts["target"].append(np.stack([d.gt[sl] for d in group]).reshape((-1, S, S, 3)))
                for i, d in enumerate(group):
                    world.observe(i, d.gt[sl], d.poses[sl])
            if show:
                print(f"  {driver}: {min(a + batch, len(drives))}/{len(drives)} episodes", flush=True)
    return {k: np.concatenate(v) for k, v in parts.items()}


def as_tensors(ex: dict, idx, device) -> tuple:
    from camworld.model.vae import frames_to_tensor

    return (frames_to_tensor(ex["decoded"][idx], device), frames_to_tensor(ex["composite"][idx], device),
            torch.as_tensor(ex["seen"][idx], device=device), torch.as_tensor(ex["filled"][idx], device=device),
            frames_to_tensor(ex["target"][idx], device))


def unseen_l1(net: RefineNet, batch) -> torch.Tensor:
    """Mean |refined - target| over the pixels no context frame saw (the only ones the net changes)."""
    d, c, s, f, y = batch
    out = (d + net(d, c, s[:, None].float(), f[:, None].float())).clamp(-1, 1)
    w = (~s)[:, None].float()
    return ((out - y).abs() * w).sum() / (3 * w.sum()).clamp_min(1.0)


@torch.no_grad()
def heldout_psnr(net: RefineNet, ex: dict, device) -> tuple:
    """PSNR (dB) of the unseen pixels on held-out examples: (the network's decode, refined)."""
    from camworld.model.refine import refine

    was = net.training
    net.eval()
    se = np.zeros(2)
    n = 0.0
    for a in range(0, len(ex["target"]), 256):
        d, c, s, f, y = as_tensors(ex, slice(a, a + 256), device)
        r = refine(net, d, c, s, f)
        w = (~s)[:, None].float()
        for i, x in enumerate((d, r)):
            se[i] += float((((x - y) * 127.5) ** 2 * w).sum())
        n += float(3 * w.sum())
    net.train(was)
    return tuple(float(10 * np.log10(255 ** 2 / max(v / max(n, 1), 1e-12))) for v in se)


def _examples(run: RefineRunConfig, device) -> tuple:
    """(training examples, held-out examples), made once and kept in OUT/data.npz."""
    path = run.out / "data.npz"
    meta = np.array([run.world or "", run.episodes, run.ep_steps, run.heldout_episodes, run.seed], dtype=object)
    if path.exists():
        z = np.load(path, allow_pickle=False)
        if [str(x) for x in z["meta"]] != [str(x) for x in meta]:
            raise SystemExit(f"{path} was made with other settings ({list(z['meta'])}); use a new --out")
        return ({k: z[k] for k in ("decoded", "composite", "seen", "filled", "target")},
                {k: z["held_" + k] for k in ("decoded", "composite", "seen", "filled", "target")})
    from camworld.world import load_world_model

    model = load_world_model(run.world, device=device)
    print(f"making the training examples: the world teacher-forced on {run.episodes} training episodes per driver")
    train = world_examples(model, DRIVERS, run.episodes, run.ep_steps, run.seed, heldout=False)
    held = world_examples(model, DRIVERS, run.heldout_episodes, run.ep_steps, run.seed + 1, heldout=True)
    from camworld.files import atomic_write

    atomic_write(path, lambda tmp: np.savez(tmp, meta=meta.astype(str), **train,
                                            **{"held_" + k: v for k, v in held.items()}))
    return train, held


def train_refine(run: RefineRunConfig, device) -> RefineNet:
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    train, held = _examples(run, device)
    torch.manual_seed(run.seed)
    net = RefineNet(run.channels).to(device)
    opt = torch.optim.AdamW(net.parameters(), REFINE_LR)
    total = int(run.steps or REFINE_STEPS)
    step = load_train_state(out, net, opt)["step"] if run.resume else 0
    log = CSVLog(out / "log.csv", ["step", "loss", "heldout_unseen_psnr_decoded", "heldout_unseen_psnr_refined",
                                   "frames_per_s", "time"])
    bar = progress(total, step, False)
    t0, seen = time.time(), 0
    N = len(train["target"])
    while step < total:
        for g in opt.param_groups:   # constant, then linear decay over the last 30%
            g["lr"] = REFINE_LR * min(1.0, (total - step) / (0.3 * total))
        idx = np.sort(np.random.default_rng([run.seed, step]).choice(N, REFINE_BATCH, replace=False))
        loss = unseen_l1(net, as_tensors(train, idx, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += REFINE_BATCH
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % run.log_every == 0 or step == total:
            dec, ref = heldout_psnr(net, held, device)
            log.write({"step": step, "loss": f"{loss.item():.5f}", "heldout_unseen_psnr_decoded": f"{dec:.3f}",
                       "heldout_unseen_psnr_refined": f"{ref:.3f}", "frames_per_s": f"{seen / (time.time() - t0):.1f}",
                       "time": f"{time.time():.0f}"})
            bar.write(f"step {step}: loss {loss.item():.4f} held-out unseen pixels {dec:.2f} -> {ref:.2f} dB")
        if step % run.save_every == 0 or step == total:
            save_train_state(out, net, opt, step, {"stage": "refine", "seed": run.seed, "channels": run.channels})
    bar.close()
    dec, ref = heldout_psnr(net, held, device)
    net.save(out / "refine", record={
        "command": " ".join(sys.argv), "stage": "refine", "steps": total, "batch": REFINE_BATCH, "seed": run.seed,
        "world": run.world or "shipped", "data": f"the world teacher-forced on {run.episodes} training episodes x "
        f"{run.ep_steps} env steps per driver ({', '.join(DRIVERS)}): {N} frames",
        "loss": "L1 on the pixels no context frame saw", "lr": f"{REFINE_LR} AdamW, linear decay over the last 30%",
        "held_out_unseen_psnr": {"decoded": round(dec, 3), "refined": round(ref, 3)},
        "held_out": f"{run.heldout_episodes} held-out episodes per driver"})
    return net.eval()
