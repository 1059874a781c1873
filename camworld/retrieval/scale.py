"""``camworld bench retrieval`` at scale: the index against the exhaustive search, an env step with a
large memory, and the memory bank's RAM over a long episode.

* ``latency``: one query segment (T = 4 poses, k = 20) against synthetic random-walk memories (0.1 m
  steps, a wandering heading), free (sparse: 1e6 frames span ~3 km) or folded into a ``box`` metre
  square (dense). Per strategy and size: ms per call without the index and with it (a ``PoseGrid``
  built over the memory, as ``MemoryBank.index`` keeps one), best and median of ``reps`` calls, in
  the same run; every indexed result is checked against the exhaustive one.
* ``step_ratio``: an env-like step (what ``World._step`` does for one world: retrieval through the
  bank's index, the frame source, the append; done here with the same parts because this layer may
  not import ``camworld.world``), k = 8, the same 4-pose targets with 10 and with 100,000 frames in
  memory (a dense walk in a 100 m square, as the latency table), alternating the two step by step so
  that load on shared cores hits both alike. Frame sources: the sim twin (``SimFrames``, 64x64
  renders: retrieval is a large share of a step) and the learned world's ``tiny`` preset (untrained
  weights, 32x32; a step is mostly sampling).
* ``bank_ram``: a ``MemoryBank`` fed a whole episode 4 frames at a time (frames, latents, times,
  the index synced every step as ``World`` does), its process's anonymous resident memory (RssAnon:
  the heap, not the page cache that the spill files use) and the bank's own arrays, every 10%.

Letters: M memory frames, T target frames.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from camworld.memory import MemoryBank, PoseGrid
from camworld.retrieval.registry import retrieve


def walk_memory(M: int, seed: int, box: float, extra: int = 0):
    """Synthetic memory poses (M + extra, 3): the benchmark's random walk, folded into a square if box > 0."""
    from camworld.retrieval.bench import fold, random_walk

    walk = random_walk(M + extra, np.random.default_rng([seed, M]))
    return fold(walk, box) if box > 0 else walk


def latency(rows: dict, sizes, reps: int, seed: int, box: float = 0.0, k: int = 20, seg_len: int = 4) -> dict:
    """-> {(label, M): dict(exhaustive=(best, median) ms, indexed=(best, median) ms, same=bool)} and
    {M: grid build seconds} under the key "build"."""
    out, build = {}, {}
    for M in sizes:
        walk = walk_memory(M, seed, box, seg_len)
        mem, tgt = walk[:M], walk[M:]
        times = np.arange(M, dtype=np.float64)
        t0 = time.perf_counter()
        grid = PoseGrid()
        grid.add(mem[:, :2], mem[:, 2])
        build[M] = time.perf_counter() - t0
        n = reps if M < 1_000_000 else max(3, reps // 2)
        for label, (name, params) in rows.items():
            cell, picks = {}, {}
            for mode, index in (("exhaustive", None), ("indexed", grid)):
                r = np.random.default_rng(seed)
                picks[mode] = retrieve(name, mem, times, tgt, k, r, index=index, **params)   # warm-up, and the check
                ts = []
                for _ in range(n):
                    r = np.random.default_rng(seed)
                    t1 = time.perf_counter()
                    retrieve(name, mem, times, tgt, k, r, index=index, **params)
                    ts.append(time.perf_counter() - t1)
                cell[mode] = (1e3 * float(np.min(ts)), 1e3 * float(np.median(ts)))
            cell["same"] = bool(np.array_equal(picks["exhaustive"], picks["indexed"]))
            out[(label, M)] = cell
    out["build"] = build
    return out


class _StepLike:
    """One world's env step without ``camworld.world`` (a higher layer): what ``World._step`` does for one
    world, with the same frame source, bank and retrieval call. Retrieve the context through the bank's
    index (newest frame last), make the frames, append them (with their latents) to memory."""

    def __init__(self, source, bank: MemoryBank, strategy: str, k: int, seed: int):
        self.source, self.bank, self.strategy, self.k = source, bank, strategy, k
        self.rng = np.random.default_rng(seed)

    def step(self, targets: np.ndarray):
        bank = self.bank
        times = bank.times
        idx = retrieve(self.strategy, bank.poses, times, targets, self.k, self.rng, index=bank.index)
        idx = idx[np.argsort(times[idx], kind="stable")]
        frames, latents = self.source.make_frames([0], [bank], [idx], targets[None], [None])
        new = bank.append(frames[0], targets, times=times[-1] + 1 + np.arange(len(targets)), source=0)
        if latents is not None:
            bank.set_latents(new, latents[0])


def _filled(M: int, poses: np.ndarray, frame_size: int, latent_shape=None) -> MemoryBank:
    """A bank of M frames (black, at the walk's poses), with latents if the source caches them."""
    bank = MemoryBank((frame_size, frame_size, 3), capacity=4096)
    for j in range(0, M, 4096):
        p = poses[j:min(j + 4096, M)]
        idx = bank.append(np.zeros((len(p), frame_size, frame_size, 3), np.uint8), p, source=0)
        if latent_shape is not None:
            bank.set_latents(idx, np.zeros((len(p),) + tuple(latent_shape), np.float32))
    return bank


def step_ratio(source: str = "sim", sizes=(10, 100_000), steps: int = 100, strategy: str = "fov+nonadj",
               k: int = 8, box: float = 100.0, seed: int = 0) -> dict:
    """Median ms per env-like step (``_StepLike``) with each memory size, same run, alternating; see module doc."""
    big = max(sizes)
    scene = None
    if source == "sim":
        from camworld.sim import make_scene
        from camworld.sim.frames import SimFrames

        scene = make_scene(1_000_000 + seed, "countryside")
        x0, x1, y0, y1 = scene.extent
        box = min(box, x1 - x0 - 2.0, y1 - y0 - 2.0)                          # the walk must stay inside the scene
    walk = walk_memory(big, seed, box, 4 * steps + 1)
    if scene is not None:
        walk = np.concatenate([walk[:, :2] + np.asarray(scene.extent[::2]) + 1.0, walk[:, 2:]], 1)
        make = lambda: SimFrames((64, 64))                                    # noqa: E731
        frame_size, latent_shape = 64, None
    elif source == "tiny":
        import torch

        from camworld.model import WorldModel, preset
        from camworld.model.frames import ModelFrames

        torch.manual_seed(seed)
        model = WorldModel(preset("tiny")).eval()
        make = lambda: ModelFrames(model, "cpu")                              # noqa: E731
        frame_size, latent_shape = int(model.cfg.frame_size), tuple(model.latent_shape)
    elif source == "shipped":   # what gym.make("ContextAsMemory-v0") steps: the shipped checkpoint, 1 world
        from camworld.model import WorldModel
        from camworld.model.frames import ModelFrames

        model = WorldModel.load(None, device="cpu")
        make = lambda: ModelFrames(model, "cpu", num_worlds=1)                # noqa: E731
        frame_size, latent_shape = int(model.cfg.frame_size), tuple(model.latent_shape)
    else:
        raise ValueError(f"source must be 'sim', 'tiny' or 'shipped', got {source!r}")
    worlds = {}
    for M in sizes:
        src = make()
        src.reset(0, seed, scene)
        worlds[M] = _StepLike(src, _filled(M, walk[big - M:big], frame_size, latent_shape), strategy, k, seed)
    times = {M: [] for M in sizes}
    for s in tqdm(range(steps), desc=f"env-like steps ({source})", leave=False):
        tgt = walk[big + 4 * s:big + 4 * s + 4]
        for M in (sizes if s % 2 == 0 else sizes[::-1]):
            t0 = time.perf_counter()
            worlds[M].step(tgt)
            times[M].append(time.perf_counter() - t0)
    for w in worlds.values():
        w.bank.close()
    med = {M: 1e3 * float(np.median(v[2:])) for M, v in times.items()}       # the first steps warm caches
    return {"source": source, "median_ms": med, "ratio": med[max(sizes)] / med[min(sizes)], "steps": steps,
            "box": box}


def _rss_anon() -> int:
    """This process's anonymous resident memory in bytes (Linux /proc; 0 where it is not available)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def bank_bytes(bank: MemoryBank) -> dict:
    """RAM held by a bank's arrays: frames and latents in RAM, per-frame pose/time arrays, the index."""
    per_frame = sum(a.nbytes for a in (bank._poses, bank._ext, bank._times, bank._sources, bank._has_lat))
    stores = bank._frames.ram.nbytes + (0 if bank._lat is None else bank._lat.ram.nbytes)
    return {"frames_latents": stores, "per_frame": per_frame, "index": bank._grid.nbytes()}


def bank_ram(n_frames: int = 1_000_000, capacity: int = 10_000, frame_size: int = 64,
             latent_shape=(4, 16, 16), spill_dir=None) -> list:
    """Feed a bank n_frames, 4 per step, with latents; -> rows (frames, RssAnon MB, bank MB by part)."""
    bank = MemoryBank((frame_size, frame_size, 3), capacity=capacity, spill_dir=spill_dir)
    walk = walk_memory(n_frames, 0, 100.0)
    frames = np.zeros((4, frame_size, frame_size, 3), np.uint8)
    lat = np.zeros((4,) + tuple(latent_shape), np.float32)
    base = _rss_anon()
    rows, mark = [], max(1, n_frames // 10)
    for j in tqdm(range(0, n_frames, 4), desc="episode", leave=False):
        idx = bank.append(frames[: min(4, n_frames - j)], walk[j:j + 4])
        bank.set_latents(idx, lat[: len(idx)])
        bank.index                                               # noqa: B018  (synced as every World step does)
        if (j + 4) % mark < 4 or j + 4 >= n_frames:
            b = bank_bytes(bank)
            rows.append({"frames": len(bank), "rss_anon_mb": (_rss_anon() - base) / 2**20,
                         **{k: v / 2**20 for k, v in b.items()}})
    bank.close()
    return rows
