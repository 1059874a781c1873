"""Fidelity benchmark: what the learned world makes up, under the motion the env allows.

    camworld eval fidelity --episodes 16 --steps 50 --out eval_fidelity

Every episode is a held-out scene driven by a random agent through the env's own action semantics
(``camworld.motion``: ``end_pose`` + ``segment_poses``, walls included) with the env's default
settings (``frames_per_step`` 4, generated in chunks of the model's 2 target frames, ``context_size``
8, the default retrieval). Since an episode that starts in a sim scene keeps that scene's walls, its
camera path is a function of the actions alone, so the ground truth is the sim rendered on that path.

Sections (mean and 95% interval over episodes; an episode's PSNR is computed from its pooled MSE, so
frames where the camera stands still, copied exactly, do not count as infinitely good):
- teacher-forced next chunk: memory holds the ground truth up to now, the model predicts the next
  chunk (2 frames). Beside it the VAE ceiling (decode(encode(gt))) and copying the newest frame.
- free rollout: ``steps`` env steps generated from one real frame, everything in memory generated;
  per step GT PSNR, SSIM and the sharpness ratio (image-gradient energy, the mean squared finite
  difference, of the generated frames over the ground truth's, pooled over episodes; 1.0 = as sharp as
  the world). Stability = quality at the last step minus step 5.
- memory under env motion: return-to-start at the env's step sizes (``camworld.eval`` kinds with
  ``deg_per_frame`` 3 and 0.25 m per frame), history and ground-truth comparison, default vs recent.
- twin: the same action sequences through ``CamWorld-v0``, whose frames must equal the ground truth
  (the upper bound, and a check that the benchmark's paths are the env's).
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camworld.metrics import mean_ci95, psnr, ssim
from camworld.model.config import WARP_SPACES
from camworld.model.warp import FILLS

DRIVERS = ("discrete", "continuous", "pose")
FRAMES_PER_STEP = 4          # the env's default
CONTEXT_SIZE = 8             # the env's default k
MEMORY_KINDS = ("rot90", "rot180", "walk2m", "loop")
STABILITY_FROM = 5           # stability figure: last step vs this step (1-based env steps)


@dataclass
class Drive:
    """One held-out episode: an agent's actions and the camera path they produce in the scene."""
    scene_seed: int
    driver: str
    actions: list           # one env action per step
    poses: np.ndarray       # (1 + steps * T, 3): the start pose, then T poses per step
    gt: np.ndarray          # uint8 (1 + steps * T, H, W, 3)
    prompt: str


def agent_actions(driver: str, poses_now, rng, bounds, state: dict):
    """The next action of a random agent (sticky: it repeats its last choice 60% of the time).
    discrete: the env's 7 actions; continuous: a random Box action in the per-step bounds;
    pose: an absolute waypoint 1-4 m away, held until reached (the env approaches it per step)."""
    from camworld.data import AGENT_ACTION_P

    if driver == "discrete":
        if "a" not in state or rng.random() >= 0.6:
            state["a"] = int(rng.choice(len(AGENT_ACTION_P), p=AGENT_ACTION_P))
        return state["a"]
    if driver == "continuous":
        if "a" not in state or rng.random() >= 0.6:
            hi = np.array([bounds.max_move, bounds.max_move, bounds.max_turn_deg])
            a = rng.uniform(-1, 1, 3) * hi
            a[0] = abs(a[0]) if rng.random() < 0.7 else a[0]  # mostly forwards, as agents move
            state["a"] = np.clip(a, -hi, hi).astype(np.float32)
        return state["a"]
    if driver == "pose":
        p = np.asarray(poses_now, np.float64)
        goal = state.get("goal")
        if goal is None or np.hypot(*(goal[:2] - p[:2])) < 0.2 or state.get("left", 0) <= 0:
            ang = p[2] + rng.uniform(-np.pi / 2, np.pi / 2)
            dist = rng.uniform(1.0, 4.0)
            goal = np.array([p[0] + dist * np.cos(ang), p[1] + dist * np.sin(ang), ang + rng.uniform(-0.5, 0.5)])
            state["goal"], state["left"] = goal, 8
        state["left"] -= 1
        return goal.astype(np.float32)
    raise ValueError(f"unknown driver '{driver}'; choose from {DRIVERS}")


def make_drives(driver: str, n: int, steps: int, frame_size: int, seed: int = 0,
                frames_per_step: int = FRAMES_PER_STEP, heldout: bool = True) -> list:
    """n held-out episodes of ``steps`` env steps each, driven by ``driver`` (deterministic in seed);
    ``heldout=False``: in training scenes instead (below the held-out seed offset: training data)."""
    from camworld.motion import CLEARANCE_M, ActionBounds, end_pose, segment_poses
    from camworld.sim import EVAL_SEED_OFFSET, make_scene, render, scene_caption

    bounds = ActionBounds(frames_per_step)
    rng = np.random.default_rng([seed, zlib.crc32(driver.encode()), steps])
    drives = []
    for e in range(n):
        scene_seed = 104729 * (e + 1) + 31 * seed + zlib.crc32(driver.encode()) % 997
        scene_seed = EVAL_SEED_OFFSET + scene_seed if heldout else scene_seed % EVAL_SEED_OFFSET
        scene = make_scene(scene_seed)
        pose = np.asarray(scene.sample_free_pose(rng), np.float64)
        poses, actions, state = [pose[None]], [], {}
        for _ in range(steps):
            a = agent_actions(driver, pose, rng, bounds, state)
            end, _ = end_pose(a, driver, pose, bounds)
            seg, _ = segment_poses(pose, end, frames_per_step, scene, CLEARANCE_M)
            actions.append(a)
            poses.append(seg)
            pose = seg[-1]
        poses = np.concatenate(poses)
        gt, _ = render(scene, poses, frame_size, frame_size)
        drives.append(Drive(scene_seed, driver, actions, poses, gt, scene_caption(scene, rng)))
    return drives


def sharpness(frames: np.ndarray) -> np.ndarray:
    """Image-gradient energy per frame: mean squared finite difference over x and y (float, (N,))."""
    x = np.asarray(frames, np.float64).reshape((-1,) + frames.shape[-3:])
    gx = np.diff(x, axis=2) ** 2
    gy = np.diff(x, axis=1) ** 2
    return gx.mean(axis=(1, 2, 3)) + gy.mean(axis=(1, 2, 3))


def sharpness_ratio(gen_energy, gt_energy, seed: int = 0, resamples: int = 400) -> tuple:
    """Pooled sharpness ratio sum(generated energy) / sum(ground-truth energy) over episodes, and the half-width
    of a bootstrap 95% interval over episodes. Pooled, because one episode facing a flat wall has almost no
    ground-truth gradient and its own ratio explodes (seen: 7.9 for one step of a 16-episode mean)."""
    g, t = np.asarray(gen_energy, np.float64), np.asarray(gt_energy, np.float64)
    ratio = float(g.sum() / max(t.sum(), 1e-12))
    if len(g) < 2:
        return ratio, float("nan")
    idx = np.random.default_rng(seed).integers(0, len(g), (resamples, len(g)))
    boot = g[idx].sum(1) / np.maximum(t[idx].sum(1), 1e-12)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return ratio, float((hi - lo) / 2)


def _settings(context_noise, sample_steps, sampler=None) -> dict:
    """The learned World's sampler settings: ``sampler`` with the context noise and sampler steps (None: the
    checkpoint's) that every section of the benchmark uses, the memory returns included."""
    kw = dict(sampler or {})
    kw.setdefault("context_noise", context_noise)
    kw.setdefault("sample_steps", sample_steps)
    return kw


def _world(model, n, retrieval, k, context_noise, sample_steps, sampler=None):
    from camworld.world import World

    return World(model, num_worlds=n, retrieval=retrieval, context_size=k, device=model.device,
                 **_settings(context_noise, sample_steps, sampler))


def teacher_forced(model, drives, retrieval: str, k: int = CONTEXT_SIZE, context_noise=None, sample_steps=None,
                   seed: int = 0, sampler: dict | None = None) -> dict:
    """Ground truth in memory; predict each next chunk (one sampling pass: ``World.frames_per_pass`` frames).
    ``sampler``: more ``World`` settings of the learned world (``dtype``, ``frames_per_pass``, ...).
    -> per-episode means and the baselines."""
    E, L = len(drives), len(drives[0].poses)
    world = _world(model, E, retrieval, k, context_noise, sample_steps, sampler)
    chunk = world.frames_per_pass
    for i, d in enumerate(drives):
        world.reset(i, d.gt[0], d.poses[0], prompt=d.prompt, seed=seed + i)
    poses = np.stack([d.poses for d in drives])
    gen = np.stack([d.gt for d in drives]).copy()
    for j in range(1, L, chunk):
        sl = slice(j, min(L, j + chunk))
        gen[:, sl] = world.step(poses[:, sl], append=False)
        for i, d in enumerate(drives):
            world.observe(i, d.gt[sl], d.poses[sl])
    gts = np.stack([d.gt for d in drives])
    rec = model.decode(model.encode(gts.reshape((-1,) + gts.shape[2:]))).reshape(gts.shape)
    newest = gts.copy()                                      # copy: each chunk repeats the frame before it
    warped = gts.copy()                                      # the newest frame reprojected (camworld.model.warp)
    for j in range(1, L, chunk):
        newest[:, j:j + chunk] = gts[:, j - 1:j]
        warped[:, j:j + chunk] = _warp_newest(gts[:, j - 1], poses[:, j - 1], poses[:, j:j + chunk], model.cfg,
                                              world.warp_depth)
    out = {}
    gt_energy = [sharpness(gts[i, 1:]).sum() for i in range(E)]
    for name, pred in (("model", gen), ("copy_newest", newest), ("warp_newest", warped), ("vae_ceiling", rec)):
        ps = [psnr(pred[i, 1:], gts[i, 1:]) for i in range(E)]  # pooled MSE: a still camera copies exactly
        ss = [np.mean([ssim(pred[i, j], gts[i, j]) for j in range(1, L)]) for i in range(E)]
        energy = [sharpness(pred[i, 1:]).sum() for i in range(E)]
        (pm, pci), (sm, sci) = mean_ci95(ps), mean_ci95(ss)
        sh, shci = sharpness_ratio(energy, gt_energy)
        out[name] = {"psnr": pm, "psnr_ci": pci, "ssim": sm, "ssim_ci": sci, "sharpness": sh, "sharpness_ci": shci,
                     "energy": energy, "psnr_episodes": [float(p) for p in ps]}
    out["gt_energy"] = gt_energy
    return out


def _warp_newest(frames, src_poses, tgt_poses, cfg, depth) -> np.ndarray:
    """uint8 (E, S, S, 3) frames at planar poses (E, 3) warped to poses (E, T, 3): (E, T, S, S, 3)."""
    from camworld.geometry import planar_to_extrinsics
    from camworld.model.vae import frames_to_tensor, tensor_to_frames
    from camworld.model.warp import warp_frames

    w = warp_frames(frames_to_tensor(frames), planar_to_extrinsics(src_poses), planar_to_extrinsics(tgt_poses),
                    cfg.hfov_deg, depth)
    return tensor_to_frames(w)


def free_rollout(model, drives, retrieval: str, k: int = CONTEXT_SIZE, context_noise=None, sample_steps=None,
                 seed: int = 0, frames_per_step: int = FRAMES_PER_STEP, sampler: dict | None = None):
    """Everything generated from the start frame on. -> (per-step curves dict, frames (E, L, H, W, 3), s/step)."""
    E, L = len(drives), len(drives[0].poses)
    T = frames_per_step
    steps = (L - 1) // T
    world = _world(model, E, retrieval, k, context_noise, sample_steps, sampler)
    for i, d in enumerate(drives):
        world.reset(i, d.gt[0], d.poses[0], prompt=d.prompt, seed=seed + i)
    poses = np.stack([d.poses for d in drives])
    gen = np.stack([d.gt for d in drives]).copy()
    spent = 0.0
    for s in range(steps):
        sl = slice(1 + s * T, 1 + (s + 1) * T)
        t0 = time.perf_counter()
        gen[:, sl] = world.step(poses[:, sl])
        spent += time.perf_counter() - t0
    curves = {"psnr": [], "psnr_ci": [], "ssim": [], "ssim_ci": [], "sharpness": [], "sharpness_ci": [],
              "energy": [], "gt_energy": [], "psnr_episodes": []}
    for s in range(steps):
        sl = slice(1 + s * T, 1 + (s + 1) * T)
        ps = [psnr(gen[i, sl], d.gt[sl]) for i, d in enumerate(drives)]
        ss = [np.mean([ssim(a, b) for a, b in zip(gen[i, sl], d.gt[sl])]) for i, d in enumerate(drives)]
        eg = [float(sharpness(gen[i, sl]).sum()) for i in range(E)]
        et = [float(sharpness(d.gt[sl]).sum()) for d in drives]
        for key, (m, ci) in (("psnr", mean_ci95(ps)), ("ssim", mean_ci95(ss)), ("sharpness", sharpness_ratio(eg, et, s))):
            curves[key].append(m)
            curves[key + "_ci"].append(ci)
        curves["energy"].append(eg)
        curves["gt_energy"].append(et)
        curves["psnr_episodes"].append([float(p) for p in ps])
    return curves, gen, spent / max(steps, 1)


def twin_check(drives, frames_per_step: int = FRAMES_PER_STEP) -> dict:
    """Drive ``CamWorld-v0`` (the sim twin) with the same actions; its frames must be the ground truth."""
    import gymnasium as gym

    import camworld  # noqa: F401  (registers the ids)

    worst, same_poses = np.inf, True
    for d in drives:
        H = d.gt.shape[1]
        env = gym.make("CamWorld-v0", action_type=d.driver, frame_size=H, frames_per_step=frames_per_step)
        _, info = env.reset(seed=0, options={"scene_seed": d.scene_seed, "pose": d.poses[0]})
        frames = [info["frames"][-1:]]
        for a in d.actions:
            _, _, _, _, info = env.step(a)
            frames.append(info["frames"])
            same_poses &= bool(np.allclose(info["pose"], d.poses[len(np.concatenate(frames)) - 1], atol=1e-4))
        env.close()
        frames = np.concatenate(frames)
        worst = min(worst, psnr(frames, d.gt))
    return {"psnr_min": float(worst), "same_poses": bool(same_poses), "sharpness": 1.0}


def memory_under_env_motion(model, n: int, retrieval: str, k: int = CONTEXT_SIZE, seed: int = 0,
                            kinds=MEMORY_KINDS, sampler: dict | None = None) -> list:
    """Return-to-start at the env's step sizes: rows of (kind, strategy, mode, psnr, ...)."""
    from camworld.eval import make_episodes, run_episodes, score

    rows = []
    for kind in kinds:
        eps = make_episodes(kind, n, model.cfg.frame_size, seed)
        for strategy in dict.fromkeys((retrieval, "recent")):
            for mode in ("history", "gt"):
                frames, _ = run_episodes(model, eps, strategy, k, mode, seed=seed, sampler=sampler)
                rows.append({"kind": kind, "strategy": strategy, "mode": mode, "frames": len(eps[0].poses),
                             **score(eps, frames, mode)})
    return rows


def evaluate(model, episodes: int = 16, steps: int = 50, drivers=DRIVERS, retrieval: str | None = None,
             k: int = CONTEXT_SIZE, context_noise=None, sample_steps=None, seed: int = 0, memory: bool = True,
             twin: bool = True, out: Path | None = None, progress: bool = True, memory_kinds=MEMORY_KINDS,
             sampler: dict | None = None) -> dict:
    """Run the whole benchmark; returns a results dict and writes the report under ``out``.
    ``sampler``: more settings of the learned ``World`` (``dtype``, ``frames_per_pass``)."""
    from tqdm import tqdm

    from camworld.retrieval import DEFAULT_STRATEGY

    retrieval = retrieval or DEFAULT_STRATEGY
    if steps < 1 or episodes < 1:
        raise ValueError(f"steps and episodes must be >= 1, got steps={steps} episodes={episodes}")
    res = {"episodes": episodes, "steps": steps, "retrieval": retrieval, "k": k,
           "frames_per_step": FRAMES_PER_STEP, "context_noise": model.cfg.diffusion.context_noise
           if context_noise is None else context_noise,
           "sample_steps": sample_steps or model.cfg.diffusion.sample_steps, "drivers": {}, "memory": []}
    # what the settings resolve to, at the batch the runs use ("auto" picks the dtype by worlds per batch)
    probe = _world(model, episodes, retrieval, k, context_noise, sample_steps, sampler)
    res["dtype"], res["frames_per_pass"] = str(probe.dtype).replace("torch.", ""), probe.frames_per_pass
    res["warp_start"], res["warp_depth"], res["warp_source"] = probe.warp_start, probe.warp_depth, probe.warp_source
    res["warp_paste"], res["learned_depth"] = probe.warp_paste, probe.learned_depth
    res["warp_space"], res["warp_fill"] = probe.warp_space, probe.warp_fill
    res["network_context"], res["novel_start"], res["refine"] = probe.network_context, probe.novel_start, probe.refine
    videos = {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(drivers) * (3 if twin else 2) + (1 if memory else 0), desc="fidelity benchmark",
               disable=not progress)
    for driver in drivers:
        drives = make_drives(driver, episodes, steps, model.cfg.frame_size, seed)
        row = {"teacher_forced": teacher_forced(model, drives, retrieval, k, context_noise, sample_steps, seed, sampler)}
        bar.update()
        curves, gen, s_per_step = free_rollout(model, drives, retrieval, k, context_noise, sample_steps, seed,
                                               sampler=sampler)
        row["rollout"] = curves
        row["seconds_per_batched_step"] = s_per_step
        bar.update()
        if twin:
            row["twin"] = twin_check(drives[: min(4, len(drives))])
            bar.update()
        res["drivers"][driver] = row
        videos[driver] = (gen[:2], np.stack([d.gt for d in drives[:2]]))
    if memory:
        res["memory"] = memory_under_env_motion(model, episodes, retrieval, k, seed, memory_kinds,
                                                _settings(context_noise, sample_steps, sampler))
        bar.update()
    bar.close()
    res["seconds"] = time.perf_counter() - t0
    if out is not None:
        write_report(res, videos, Path(out))
    return res


# ---------------------------------------------------------------- report


def _c(d, key="psnr", fmt=".2f"):
    ci = d.get(key + "_ci", float("nan"))
    return f"{d[key]:{fmt}} ± {ci:{fmt}}"


def stability(curves) -> float:
    """GT PSNR at the last step minus at step ``STABILITY_FROM`` (or the first, for short rollouts)."""
    p = curves["psnr"]
    return float(p[-1] - p[min(STABILITY_FROM, len(p)) - 1])


def markdown(res) -> str:
    lines = [f"Held-out scenes, {res['episodes']} episodes per driver, env defaults: {res['frames_per_step']} frames "
             f"per step, k = {res['k']}, retrieval `{res['retrieval']}`, {res['sample_steps']} sampler steps "
             f"({res.get('dtype', 'float32')}, {res.get('frames_per_pass', 2)} frames per pass), "
             f"context noise {res['context_noise']:g}"
             + (f", warp start {res['warp_start']:g} ({res.get('warp_source', 'newest')} frame, depth "
                f"{res['warp_depth']:g} m, {res.get('warp_space', 'pixels')}, {res.get('warp_fill', 'border')} fill)"
                if res.get("warp_start", 1.0) < 1.0 else "")
             + (", context pixels pasted where a context camera saw the target" if res.get("warp_paste") else "")
             + (", learned depth" if res.get("learned_depth") else "")
             + (f", the network sees {res['network_context']} of the k context frames"
                if res.get("network_context") else "")
             + ". Mean ± 95% interval over episodes.", "",
             "### Teacher-forced next chunk (ground truth in memory)", "",
             "| driver | model PSNR | model SSIM | sharpness | copy newest PSNR | warp newest PSNR | VAE ceiling PSNR "
             "| VAE ceiling SSIM | VAE sharpness | gap to ceiling |", "|---|---|---|---|---|---|---|---|---|---|"]
    for drv, row in res["drivers"].items():
        tf = row["teacher_forced"]
        m, c, v = tf["model"], tf["copy_newest"], tf["vae_ceiling"]
        wn = _c(tf["warp_newest"]) if "warp_newest" in tf else "-"    # reports written before it existed
        lines.append(f"| {drv} | {_c(m)} | {_c(m, 'ssim', '.3f')} | {_c(m, 'sharpness')} | {_c(c)} | {wn} | {_c(v)} | "
                     f"{_c(v, 'ssim', '.3f')} | {_c(v, 'sharpness')} | {v['psnr'] - m['psnr']:.2f} dB |")
    lines += ["", f"### Free rollout ({res['steps']} env steps from one real frame)", "",
              "| driver | GT PSNR step 1 | step 5 | last step | stability (last - step 5) | SSIM last | "
              "sharpness min over steps | sharpness last | s per batched step |", "|---|---|---|---|---|---|---|---|---|"]
    for drv, row in res["drivers"].items():
        r = row["rollout"]
        i5 = min(STABILITY_FROM, len(r["psnr"])) - 1
        lines.append(f"| {drv} | {r['psnr'][0]:.2f} | {r['psnr'][i5]:.2f} | {r['psnr'][-1]:.2f} ± {r['psnr_ci'][-1]:.2f} | "
                     f"{stability(r):+.2f} dB | {r['ssim'][-1]:.3f} | {min(r['sharpness']):.2f} | "
                     f"{r['sharpness'][-1]:.2f} | {row['seconds_per_batched_step']:.2f} |")
    twins = {d: r["twin"] for d, r in res["drivers"].items() if "twin" in r}
    if twins:
        lines += ["", "### Twin `CamWorld-v0` (upper bound; same actions through the env)", "",
                  "| driver | min PSNR vs benchmark ground truth | same poses | sharpness |", "|---|---|---|---|"]
        for drv, t in twins.items():
            p = "identical" if t["psnr_min"] >= 99 else f"{t['psnr_min']:.2f} dB"
            lines.append(f"| {drv} | {p} | {t['same_poses']} | {t['sharpness']:.2f} |")
    if res["memory"]:
        lines += ["", "### Memory under env motion (return to start, 3 degrees / 0.25 m per frame)", "",
                  "| trajectory | frames | strategy | HC PSNR | HC SSIM | GT PSNR | GT SSIM |", "|---|---|---|---|---|---|---|"]
        kinds = list(dict.fromkeys(r["kind"] for r in res["memory"]))
        for kind in kinds:
            for s in dict.fromkeys(r["strategy"] for r in res["memory"]):
                h = next(r for r in res["memory"] if r["kind"] == kind and r["strategy"] == s and r["mode"] == "history")
                g = next(r for r in res["memory"] if r["kind"] == kind and r["strategy"] == s and r["mode"] == "gt")
                lines.append(f"| {kind} | {h['frames']} | {s} | {_c(h)} | {_c(h, 'ssim', '.3f')} | {_c(g)} | "
                             f"{_c(g, 'ssim', '.3f')} |")
            ours = next(r for r in res["memory"] if r["kind"] == kind and r["strategy"] == res["retrieval"] and r["mode"] == "history")
            rec = next((r for r in res["memory"] if r["kind"] == kind and r["strategy"] == "recent" and r["mode"] == "history"), None)
            if rec is not None and rec is not ours:
                lines.append(f"| {kind} | | margin over recent | {ours['psnr'] - rec['psnr']:+.2f} dB | | | |")
    return "\n".join(lines) + "\n"


def plot_curves(res, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, label in zip(axes, ("psnr", "ssim", "sharpness"), ("GT PSNR (dB)", "SSIM", "sharpness ratio")):
        for drv, row in res["drivers"].items():
            y, e = np.asarray(row["rollout"][key]), np.nan_to_num(np.asarray(row["rollout"][key + "_ci"]))
            x = np.arange(1, len(y) + 1)
            ax.plot(x, y, label=drv)
            ax.fill_between(x, y - e, y + e, alpha=0.2)
        if key == "psnr":
            for drv, row in res["drivers"].items():
                ax.axhline(row["teacher_forced"]["vae_ceiling"]["psnr"], linestyle=":", color="k", linewidth=1)
        if key == "sharpness":
            ax.axhline(1.0, linestyle=":", color="k", linewidth=1, label="as sharp as the world")
            ax.axhline(0.85, linestyle="--", color="r", linewidth=1, label="target 0.85")
        ax.set_xlabel("env step"), ax.set_ylabel(label), ax.grid(alpha=0.3)
    axes[0].set_title("free rollout vs ground truth (dotted: VAE ceiling)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _paired(a, b) -> str:
    """'+d ± ci (n)' of the per-episode differences b - a (the same episodes in both runs)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.size == 0:
        return "-"
    m, ci = mean_ci95(b - a)
    return f"{m:+.2f} ± {ci:.2f}"


def compare(a_dir, b_dir) -> str:
    """Paired differences (B - A) between two fidelity reports of the same episodes (same seed, episodes and
    steps): teacher-forced PSNR, rollout GT PSNR per step, return-to-start PSNR; mean and 95% interval over
    the per-episode differences, which are far tighter than the two runs' own intervals."""
    for d in (a_dir, b_dir):
        if not (Path(d) / "results.json").is_file():
            raise SystemExit(f"--compare: {d} holds no results.json (a finished camworld eval fidelity --out folder)")
    ra, rb = (json.loads((Path(d) / "results.json").read_text()) for d in (a_dir, b_dir))
    for key in ("episodes", "steps"):
        if ra.get(key) != rb.get(key):
            raise ValueError(f"the two reports differ in {key} ({ra.get(key)} vs {rb.get(key)}): not the same episodes")
    lines = [f"Paired differences B - A (A = {a_dir}, B = {b_dir}), mean ± 95% interval over episodes (dB).", "",
             "| driver | teacher-forced | rollout step 1 | step 5 | last step |", "|---|---|---|---|---|"]
    for drv in ra["drivers"]:
        if drv not in rb["drivers"]:
            continue
        ta, tb = ra["drivers"][drv]["teacher_forced"]["model"], rb["drivers"][drv]["teacher_forced"]["model"]
        ca, cb = ra["drivers"][drv]["rollout"], rb["drivers"][drv]["rollout"]
        if "psnr_episodes" not in ta or "psnr_episodes" not in tb:
            raise ValueError("a report has no per-episode values (written before they were kept): rerun it")
        steps = [0, min(STABILITY_FROM, len(ca["psnr"])) - 1, len(ca["psnr"]) - 1]
        cells = [_paired(ta["psnr_episodes"], tb["psnr_episodes"])]
        cells += [_paired(ca["psnr_episodes"][i], cb["psnr_episodes"][i]) for i in steps]
        lines.append(f"| {drv} | " + " | ".join(cells) + " |")
    rows_b = {(r["kind"], r["strategy"], r["mode"]): r for r in rb.get("memory", [])}
    mem = [(r, rows_b[(r["kind"], r["strategy"], r["mode"])]) for r in ra.get("memory", [])
           if (r["kind"], r["strategy"], r["mode"]) in rows_b and "psnr_episodes" in r]
    if mem:
        lines += ["", "| return to start | strategy | mode | A | B | B - A |", "|---|---|---|---|---|---|"]
        for r, q in mem:
            lines.append(f"| {r['kind']} | {r['strategy']} | {r['mode']} | {r['psnr']:.2f} | {q['psnr']:.2f} | "
                         f"{_paired(r['psnr_episodes'], q['psnr_episodes'])} |")
    return "\n".join(lines)


def write_report(res, videos, out: Path):
    from camworld.viz import save_png, write_mp4

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    (out / "results.md").write_text(markdown(res))
    plot_curves(res, out / "rollout_curves.png")
    for drv, (gen, gt) in videos.items():
        write_mp4(out / f"rollout_{drv}.mp4", np.concatenate([gen[0], gt[0]], 2), fps=8)  # generated | ground truth
    if "discrete" in videos:  # a still: every 8th frame of two rollouts, generated above ground truth
        gen, gt = videos["discrete"]
        idx = np.linspace(1, gen.shape[1] - 1, min(8, gen.shape[1] - 1)).round().astype(int)
        rows = [np.concatenate(list(a[idx]), 1) for pair in zip(gen, gt) for a in pair]
        save_png(out / "rollout_discrete.png", np.concatenate(rows, 0), scale=2)


# ---------------------------------------------------------------- CLI (``camworld eval fidelity``)


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--steps", type=int, default=50, help="fidelity: env steps of each free rollout")
    p.add_argument("--drivers", nargs="*", default=list(DRIVERS), choices=DRIVERS,
                   help="fidelity: how the agent drives (the env's action types)")
    p.add_argument("--context-noise", type=float, default=None,
                   help="flow time the context latents are noised to at inference (default: the checkpoint's)")
    p.add_argument("--sample-steps", type=int, default=None, help="Euler steps (default: the checkpoint's)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="the DiT's sampling dtype (auto: bfloat16 on CUDA, and on CPUs with AMX or AVX512-BF16 from 8 worlds per batch; "
                        "else float32)")
    p.add_argument("--frames-per-pass", type=int, default=None,
                   help="frames generated per sampling pass (default: the checkpoint's training target length)")
    p.add_argument("--warp-start", type=float, default=None,
                   help="start each sample at this flow time from the newest frame warped to the target camera "
                        "(camworld.model.warp; 1 = from pure noise; default: the checkpoint's)")
    p.add_argument("--warp-depth", type=float, default=None,
                   help="the warp's assumed depth in metres off the floor (default: the checkpoint's)")
    p.add_argument("--warp-source", default=None, choices=["newest", "nearest", "paste"],
                   help="the frame warped: the newest, the context frame nearest each target camera, or the paste's "
                        "composite of every context frame (computed once for the start and the paste; default: the "
                        "checkpoint's)")
    p.add_argument("--warp-space", default=None, choices=WARP_SPACES,
                   help="where the warp start reprojects: the decoded frame, then encoded (pixels), its cached "
                        "latents (latents: no encode), or the first target's pixels, its latents warped on to "
                        "the others (mixed: one encode per world); default: the checkpoint's")
    p.add_argument("--network-context", type=int, default=None,
                   help="context frames the DiT sees: the newest and those nearest the targets (0: all k; the warp "
                        "start and the paste use all k); default: the checkpoint's")
    p.add_argument("--warp-fill", default=None, choices=list(FILLS),
                   help="what the warp start shows where its source frame did not look: the border repeated, "
                        "filled from the seen pixels around, the seen texture mirrored, or filled along each row "
                        "(default: the checkpoint's)")
    p.add_argument("--warp-paste", default=None, choices=["on", "off"],
                   help="keep the context's reprojected pixels wherever a context camera saw the target pixel "
                        "(camworld.model.warp.reproject; default: the checkpoint's)")
    p.add_argument("--learned-depth", default=None, choices=["on", "off"],
                   help="warp with the model's depth net (camworld.model.depth; default: on when the checkpoint "
                        "has one)")
    p.add_argument("--novel-start", type=float, default=None,
                   help="flow time the sampler starts at where the warp start's source did not see the target (the "
                        "seen part held at the warp until --warp-start; default: the checkpoint's, else the warp start)")
    p.add_argument("--refine", default=None, choices=["on", "off"],
                   help="repair what no context frame saw with the model's refine net (camworld.model.refine; default: "
                        "on when the checkpoint names one)")
    p.add_argument("--no-memory", action="store_true", help="fidelity: skip the return-to-start section")
    p.add_argument("--memory-kinds", nargs="*", default=list(MEMORY_KINDS),
                   help="fidelity: return-to-start kinds (rotN, walkNm, loop) at the env's step sizes")
    p.add_argument("--no-twin", action="store_true", help="fidelity: skip the CamWorld-v0 twin check")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                   help="fidelity: print the paired per-episode differences B - A of two report folders "
                        "(same episodes) and exit")


def sampler_settings(args) -> dict:
    """The learned World's sampler settings from the CLI flags above (for ``World(**settings)``)."""
    return {"dtype": args.dtype, "frames_per_pass": args.frames_per_pass,
            **{k: v for k, v in (("warp_start", getattr(args, "warp_start", None)),
                                 ("warp_depth", getattr(args, "warp_depth", None)),
                                 ("warp_source", getattr(args, "warp_source", None)),
                                 ("warp_space", getattr(args, "warp_space", None)),
                                 ("warp_fill", getattr(args, "warp_fill", None)),
                                 ("network_context", getattr(args, "network_context", None)),
                                 ("novel_start", getattr(args, "novel_start", None)),
                                 ("refine", {"on": True, "off": False}.get(getattr(args, "refine", None))),
                                 ("warp_paste", {"on": True, "off": False}.get(getattr(args, "warp_paste", None))),
                                 ("learned_depth", {"on": True, "off": False}.get(getattr(args, "learned_depth", None))))
                if v is not None}}


def run(args, model):
    if getattr(args, "compare", None):
        print(compare(*args.compare))
        return 0
    res = evaluate(model, args.episodes, args.steps, args.drivers, args.ours, CONTEXT_SIZE if args.k is None else args.k,
                   args.context_noise, args.sample_steps, args.seed, memory=not args.no_memory,
                   twin=not args.no_twin, out=Path(args.out), memory_kinds=tuple(args.memory_kinds),
                   sampler=sampler_settings(args))
    print(markdown(res))
    print(f"wrote {args.out}/results.md, results.json, rollout_curves.png, rollout_*.mp4 ({res['seconds']:.0f} s)")
    return 0
