"""``camworld bench env``: env steps/s and generated frames/s, one batched vector env vs N separate envs.

    camworld bench env                                  # learned world and sim twin, N in {1, 4, 16}
    camworld bench env --worlds model --num-envs 1 16 --steps 20

For each world and N, in the same run: "batched" is ``CamWorldVectorEnv`` (N worlds, one
generator call per step); "separate" is N ``CamWorldEnv`` with their own single-world backends
stepped one after the other (what ``SyncVectorEnv`` or SB3's ``DummyVecEnv`` would do; the model
weights are shared through the loader's cache, so only the batching differs). Random actions,
no resets inside the timed steps. The last column divides frames/s by the batched N=1 figure.

``--vectorization 2 4`` adds Gymnasium's own ways for the same N: ``sync`` (``SyncVectorEnv``, N
envs stepped in turn in this process), ``async`` (``AsyncVectorEnv``, one worker process per env;
each worker takes its share of the cores, ``camworld.threads``) and the batched default
(``vector_entry_point``), as ratios against sync in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from camworld import threads
from camworld.model.config import WARP_SPACES
from camworld.retrieval import DEFAULT_STRATEGY


def bench_arguments(p: argparse.ArgumentParser):
    p.add_argument("--worlds", nargs="+", default=["model", "sim"], choices=["model", "sim"],
                   help="model = the learned world (ContextAsMemory-v0), sim = the ground-truth twin (CamWorld-v0)")
    p.add_argument("--num-envs", nargs="+", type=int, default=[1, 4, 16])
    p.add_argument("--steps", type=int, default=8, help="timed env steps per configuration")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--frames-per-step", type=int, default=4)
    p.add_argument("--context-size", type=int, default=8)
    p.add_argument("--retrieval", default=DEFAULT_STRATEGY)
    p.add_argument("--checkpoint", default=None, help="learned-world checkpoint (default: the shipped one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-separate", action="store_true", help="skip the N-separate-envs baseline")
    p.add_argument("--vectorization", nargs="*", type=int, default=[], metavar="N",
                   help="also time Gymnasium's vectorisations for these N (e.g. 2 4): sync (N envs, one process), "
                        "async (N worker processes, one env each) and the batched default, as ratios against sync")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="learned world: the DiT's sampling dtype (default: the env's, auto)")
    p.add_argument("--sample-steps", type=int, default=None, help="learned world: Euler steps (default: the env's)")
    p.add_argument("--frames-per-pass", type=int, default=None,
                   help="learned world: frames per sampling pass (default: the env's)")
    p.add_argument("--breakdown", action="store_true",
                   help="learned world: where a batched step's time goes (retrieval, encode, context, denoise per "
                        "sampler step, decode, memory, the rest), per N")
    p.add_argument("--reference", action="store_true",
                   help="learned world: also time the reference sampler (float32, 8 Euler steps, 2 frames per "
                        "pass: the settings before the fast path) in the same run, as a ratio")
    p.add_argument("--samplers", nargs="*", default=[],
                   metavar="DTYPE:STEPS:PASS[:WARP[:PASTE[:SPACE[:NETK[:DEPTH]]]]]",
                   help="learned world: more sampler settings to time in the same run, e.g. bfloat16:4:4 or "
                        "bfloat16:4:2:1.0 or :4:2:0.3:off (dtype, Euler steps, frames per pass, warp start, "
                        "paste on/off, warp space pixels/latents/mixed, context frames the network sees (0: all), "
                        "learned depth on/off; an empty or missing field keeps the default)")
    threads.add_argument(p)


REFERENCE_SAMPLER = {"dtype": "float32", "sample_steps": 8, "frames_per_pass": 2, "warp_start": 1.0,
                     "warp_paste": False, "warp_space": "pixels", "network_context": 0}


def parse_sampler(spec: str) -> dict:
    """'bfloat16:4:4' -> {"dtype": "bfloat16", "sample_steps": 4, "frames_per_pass": 4}; a fourth field is the
    warp start ('bfloat16:4:2:1.0': from pure noise), a fifth the paste ('::::off'), a sixth the warp space
    (':::::pixels'), a seventh the context frames the network sees ('::::::4'; 0 = all), an eighth the learned
    depth (':::::::on'); empty fields are left out."""
    parts = spec.split(":")
    if len(parts) not in (3, 4, 5, 6, 7, 8):
        raise SystemExit(f"--samplers: expected DTYPE:STEPS:PASS[:WARP[:PASTE[:SPACE[:NETK[:DEPTH]]]]] (e.g. "
                         f"bfloat16:4:4), got {spec!r}")
    if len(parts) >= 5 and parts[4] not in ("", "on", "off"):
        raise SystemExit(f"--samplers: PASTE must be on or off, got {spec!r}")
    if len(parts) >= 6 and parts[5] not in ("",) + WARP_SPACES:
        raise SystemExit(f"--samplers: SPACE must be one of {WARP_SPACES}, got {spec!r}")
    if len(parts) == 8 and parts[7] not in ("", "on", "off"):
        raise SystemExit(f"--samplers: DEPTH must be on or off, got {spec!r}")
    out = {}
    try:
        if parts[0]:
            out["dtype"] = parts[0]
        if parts[1]:
            out["sample_steps"] = int(parts[1])
        if parts[2]:
            out["frames_per_pass"] = int(parts[2])
        if len(parts) >= 4 and parts[3]:
            out["warp_start"] = float(parts[3])
        if len(parts) >= 5 and parts[4]:
            out["warp_paste"] = parts[4] == "on"
        if len(parts) >= 6 and parts[5]:
            out["warp_space"] = parts[5]
        if len(parts) >= 7 and parts[6]:
            out["network_context"] = int(parts[6])
        if len(parts) == 8 and parts[7]:
            out["learned_depth"] = parts[7] == "on"
    except ValueError:
        raise SystemExit(f"--samplers: STEPS and PASS must be integers and WARP a number, got {spec!r}") from None
    return out


def _sampler_label(sampler: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sampler.items())


def _env_kwargs(args, world: str, sampler: dict | None = None) -> dict:
    kw = dict(frames_per_step=args.frames_per_step, context_size=args.context_size, retrieval=args.retrieval)
    if world == "model":
        kw.update(checkpoint=args.checkpoint, device=args.device, dtype=args.dtype, sample_steps=args.sample_steps,
                  frames_per_pass=args.frames_per_pass)
        kw.update(sampler or {})
    return kw


def _timed(step, steps: int) -> tuple:
    """-> (wall seconds, process CPU seconds) per call of step()."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps


def time_batched(world: str, n: int, args, sampler: dict | None = None) -> tuple:
    """(wall, cpu) seconds per env step of a CamWorldVectorEnv of n envs."""
    from camworld.envs.vector import CamWorldVectorEnv

    return _time_vector_env(CamWorldVectorEnv(num_envs=n, backend=world, **_env_kwargs(args, world, sampler)), args)


SECTIONS = ("retrieval", "encode", "depth", "warp", "context", "denoise", "decode", "paste", "memory")
_D = SECTIONS.index("denoise")   # the breakdown table's denoise column (per network call too)


def breakdown(n: int, args, sampler: dict | None = None) -> dict:
    """Seconds per batched env step of n learned-world envs, split by ``camworld.profile`` sections."""
    from camworld.envs.vector import CamWorldVectorEnv
    from camworld.profile import Timings

    venv = CamWorldVectorEnv(num_envs=n, backend="model", **_env_kwargs(args, "model", sampler))
    try:
        venv.reset(seed=args.seed)
        venv.action_space.seed(args.seed)
        for _ in range(args.warmup):
            venv.step(venv.action_space.sample())
        world = venv.backend.world
        with Timings() as tm:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                venv.step(venv.action_space.sample())
            total = (time.perf_counter() - t0) / args.steps
        out = {name: tm.seconds.get(name, 0.0) / args.steps for name in SECTIONS}
        out["other"] = total - sum(out.values())
        out["total"] = total
        out["passes"] = tm.calls.get("denoise", 0) / args.steps
        out["sample_steps"] = world.sample_steps or world.cfg.diffusion.sample_steps
        out["warp_start"] = world.warp_start
        out["warp_paste"] = world.warp_paste
        out["warp_space"] = world.warp_space
        out["network_context"] = world.network_context
        out["learned_depth"] = world.learned_depth
        from camworld.model.diffusion import timesteps      # network calls per pass (a warp start skips some)
        out["calls"] = len(timesteps(out["sample_steps"], world.cfg.diffusion.shift, start=world.warp_start)) - 1
        out["dtype"] = str(world.dtype).replace("torch.", "")
        out["frames_per_pass"] = world.frames_per_pass
        return out
    finally:
        venv.close()


def bench_breakdown(args, T: int):
    print(f"\n| N | sampler | ms per step | " + " | ".join(SECTIONS[:_D]) + " | denoise (per network call) | "
          + " | ".join(SECTIONS[_D + 1:]) + " | other (env, Python) |")
    print("|---|---|---|" + "---|" * (len(SECTIONS) + 1))
    for n in args.num_envs:
        for sampler in ([REFERENCE_SAMPLER] if args.reference else []) + [parse_sampler(x) for x in args.samplers] + [None]:
            b = breakdown(n, args, sampler)
            per = b["denoise"] / max(b["passes"] * b["calls"], 1)
            cells = [f"{1e3 * b[k]:.0f} ({100 * b[k] / b['total']:.0f}%)" for k in SECTIONS[:_D]]
            cells.append(f"{1e3 * b['denoise']:.0f} ({100 * b['denoise'] / b['total']:.0f}%; {1e3 * per:.1f})")
            cells += [f"{1e3 * b[k]:.0f} ({100 * b[k] / b['total']:.0f}%)" for k in SECTIONS[_D + 1:] + ("other",)]
            warp = f", warp {b['warp_start']:g} ({b['calls']} calls)" if b["warp_start"] < 1 else ""
            warp += ", latent warp" if b["warp_start"] < 1 and b.get("warp_space") == "latents" else ""
            warp += ", paste" if b.get("warp_paste") else ""
            warp += f", network sees {b['network_context']}" if b.get("network_context") else ""
            warp += ", learned depth" if b.get("learned_depth") else ""
            label = (f"{b['dtype']}, {b['sample_steps']} steps{warp}, {b['frames_per_pass']}/pass, "
                     f"{b['passes']:.0f} passes")
            print(f"| {n} | {label} | {1e3 * b['total']:.0f} | " + " | ".join(cells) + " |", flush=True)


def _time_vector_env(venv, args) -> tuple:
    """Reset, warm up, then (wall, cpu) seconds per step of random actions; closes the env."""
    try:
        venv.reset(seed=args.seed)
        venv.action_space.seed(args.seed)
        for _ in range(args.warmup):
            venv.step(venv.action_space.sample())
        return _timed(lambda: venv.step(venv.action_space.sample()), args.steps)
    finally:
        venv.close()


def time_separate(world: str, n: int, args) -> tuple:
    """(wall, cpu) seconds per (vector) step of n separate CamWorldEnv stepped one after the other."""
    from camworld.envs.world_env import CamWorldEnv

    envs = [CamWorldEnv(backend=world, **_env_kwargs(args, world)) for _ in range(n)]
    try:
        for i, env in enumerate(envs):
            env.reset(seed=args.seed + i)
            env.action_space.seed(args.seed + i)
        for _ in range(args.warmup):
            for env in envs:
                env.step(env.action_space.sample())
        def step_all():
            for env in envs:
                env.step(env.action_space.sample())

        return _timed(step_all, args.steps)
    finally:
        for env in envs:
            env.close()


def time_gym_vector(world: str, n: int, mode: str, args) -> tuple:
    """(wall, cpu) seconds per step of ``gym.make_vec(id, num_envs=n, vectorization_mode=mode)``.
    cpu counts this process only (async workers run elsewhere)."""
    import gymnasium as gym

    import camworld  # noqa: F401  (registers the ids)

    env_id = "ContextAsMemory-v0" if world == "model" else "CamWorld-v0"
    return _time_vector_env(gym.make_vec(env_id, num_envs=n, vectorization_mode=mode, **_env_kwargs(args, world)),
                            args)


VECTOR_MODES = (("sync", "sync"), ("async", "async"), ("batched", "vector_entry_point"))


def bench_vectorization(args, T: int):
    """Sync vs async (one worker process per env) vs the batched default, as ratios against sync."""
    print("\n| world | N | gym.make_vec mode | env steps/s | frames/s | vs sync |")
    print("|---|---|---|---|---|---|")
    for world in args.worlds:
        for n in args.vectorization:
            base = None
            for label, mode in VECTOR_MODES:
                sec, _ = time_gym_vector(world, n, mode, args)
                sps = n / sec
                base = sps if base is None else base
                what = f"async ({n} workers)" if label == "async" else label
                print(f"| {world} | {n} | {what} | {sps:.2f} | {sps * T:.1f} | {sps / base:.2f}x |", flush=True)


def bench(args) -> int:
    import torch

    threads.apply(args.threads)
    T = args.frames_per_step
    rows = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# camworld bench env: {platform.machine()}, {os.cpu_count()} CPUs (load {load:.1f}), torch "
          f"{torch.__version__}, threads {torch.get_num_threads()}, device {args.device}; frames_per_step={T}, "
          f"context_size={args.context_size}, retrieval={args.retrieval}, {args.steps} timed steps")
    print("| world | N | mode | env steps/s | frames/s | frames/cpu-s | frames/s vs batched N=1 |")
    print("|---|---|---|---|---|---|---|")
    for world in args.worlds:
        base = None
        for n in args.num_envs:
            modes = [("batched", time_batched)] + ([] if args.no_separate or n == 1 else [("separate", time_separate)])
            if world == "model":
                for spec in args.samplers[::-1]:
                    smp = parse_sampler(spec)
                    modes.insert(0, (f"batched, {_sampler_label(smp)}",
                                     lambda w, n_, a, smp=smp: time_batched(w, n_, a, smp)))
                if args.reference:   # the reference sampler first: the ratios' baseline
                    modes.insert(0, ("batched, reference sampler",
                                     lambda w, n_, a: time_batched(w, n_, a, REFERENCE_SAMPLER)))
            ref = None
            for mode, fn in modes:
                sec, cpu = fn(world, n, args)
                sps, fps = n / sec, n * T / sec
                base = fps if (base is None and mode == "batched" and n == min(args.num_envs)) else base
                if mode == "batched, reference sampler":
                    ref = sps
                rows.append((world, n, mode, sps, fps))
                vs_ref = f" ({sps / ref:.2f}x the reference sampler)" if ref and mode != "batched, reference sampler" \
                    and mode != "separate" else ""
                vs_base = f"{fps / base:.2f}x" if base else "-"
                print(f"| {world} | {n} | {mode} | {sps:.2f}{vs_ref} | {fps:.1f} | {n * T / cpu:.1f} | {vs_base} |",
                      flush=True)
    if args.vectorization:
        bench_vectorization(args, T)
    if args.breakdown and "model" in args.worlds:
        bench_breakdown(args, T)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_arguments(p)
    return bench(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
