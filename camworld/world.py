"""World = world model + memory + retriever: the paper's Algorithm 2, for B worlds at once.

Each step: the user gives the next camera poses (one per frame to generate); for every world,
memory retrieval picks k context frames (always including that world's newest frame) by their
poses; their latents come from the memory's cache (each frame is encoded at most once; generated
frames keep the latents they were generated as); one batched sampling pass generates all worlds'
frames; frames, poses and latents are appended to memory.

With ``shared_memory=True`` all B cameras live in ONE world and share one memory bank: what one
camera generated, another retrieves when it looks at the same place (multi-agent).

Letters: B worlds, T frames per step, k context size, H/W frame size.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from camworld import threads
from camworld.geometry import batch_target_poses, planar_to_extrinsics
from camworld.memory import MemoryBank
from camworld.model import DEFAULT_CHECKPOINT, WorldModel, resolve_device
from camworld.retrieval import DEFAULT_STRATEGY as DEFAULT_RETRIEVAL
from camworld.retrieval import STRATEGIES, retrieve


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float, device: str) -> WorldModel:
    return WorldModel.load(path, device=device)


def load_world_model(checkpoint=None, device="auto") -> WorldModel:
    """Load (and cache per process) a world-model checkpoint; None = the shipped default."""
    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.exists():
        raise FileNotFoundError(f"no world-model checkpoint at {path}")
    dev = resolve_device(device)
    return _load_cached(str(path.resolve()), path.stat().st_mtime, str(dev))


class World:
    """B worlds (or B cameras in one shared world) stepped in one batched forward pass.

    ``torch_threads``: torch intra-op threads for this process (``torch.set_num_threads``); None = the
    thread policy of ``camworld.threads`` (a worker process takes its fair share of the cores)."""

    def __init__(self, model: WorldModel, *, num_worlds: int = 1, retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, sample_steps: int | None = None, guidance: float | None = None,
                 memory_capacity: int = 100_000, shared_memory: bool = False, device="auto",
                 context_noise: float | None = None, torch_threads: int | None = None):
        if retrieval not in STRATEGIES:
            raise ValueError(f"unknown retrieval strategy '{retrieval}'; choose from {sorted(STRATEGIES)}")
        if int(num_worlds) < 1:
            raise ValueError(f"num_worlds must be >= 1, got {num_worlds}")
        if int(context_size) < 1:
            raise ValueError(f"context_size must be >= 1 (it includes the newest frame), got {context_size}")
        self.torch_threads = threads.apply(torch_threads)   # the process's fair share (camworld.threads)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        self.num_worlds = int(num_worlds)
        self.retrieval, self.context_size = retrieval, int(context_size)
        self.sample_steps, self.guidance = sample_steps, guidance
        # flow time the context latents are noised to before each pass (model default: its config's)
        self.context_noise = float(model.cfg.diffusion.context_noise if context_noise is None else context_noise)
        if not 0.0 <= self.context_noise < 1.0:
            raise ValueError(f"context_noise must be in [0, 1), got {self.context_noise}")
        self.shared_memory = bool(shared_memory)
        S = self.cfg.frame_size
        n_banks = 1 if shared_memory else self.num_worlds
        self.memories = [MemoryBank(frame_shape=(S, S, 3), capacity=memory_capacity) for _ in range(n_banks)]
        self.prompts: list = [None] * self.num_worlds
        self._gen = [None] * self.num_worlds           # per-world torch.Generator (sampling noise)
        self._rng = [None] * self.num_worlds           # per-world np.random.Generator (retrieval)
        self._last = np.full(self.num_worlds, -1)      # memory index of each world's newest frame
        self._clock = np.zeros(n_banks, np.int64)      # frame counter per memory bank
        self.last_retrieved = [np.zeros(0, np.int64) for _ in range(self.num_worlds)]

    @property
    def frame_size(self) -> tuple:
        return (self.cfg.frame_size, self.cfg.frame_size)

    def memory_of(self, i: int) -> MemoryBank:
        return self.memories[0 if self.shared_memory else i]

    # ---------------------------------------------------------------- state (for camworld.world_io)

    def camera_state(self, i: int) -> dict:
        """World i's per-camera state: ``prompt``, ``last`` (memory index of its newest frame, -1 before
        reset), ``last_retrieved``, ``rng`` (numpy Generator, retrieval) and ``gen`` (torch Generator,
        sampling noise). The live objects: copy before mutating."""
        return {"prompt": self.prompts[i], "last": int(self._last[i]), "last_retrieved": self.last_retrieved[i],
                "rng": self._rng[i], "gen": self._gen[i]}

    def set_camera_state(self, i: int, prompt, last: int, last_retrieved, rng, gen):
        """Restore what ``camera_state`` returned (validated by the caller against the memory bank)."""
        self.prompts[i], self._last[i] = prompt, int(last)
        self.last_retrieved[i] = np.asarray(last_retrieved, np.int64).reshape(-1)
        self._rng[i], self._gen[i] = rng, gen

    def bank_clock(self, bank: int) -> int:
        """Frames ever appended to memory bank ``bank`` (its next timestamp)."""
        return int(self._clock[bank])

    def set_bank(self, bank: int, memory: MemoryBank, clock: int):
        """Replace memory bank ``bank`` (closing the old one) and set its frame clock."""
        self.memories[bank].close()
        self.memories[bank] = memory
        self._clock[bank] = int(clock)

    def newest(self, i: int) -> tuple:
        """The newest frame uint8 (H, W, 3) and planar pose (3,) of camera/world ``i`` (where it stands)."""
        if self._last[i] < 0:
            raise RuntimeError(f"camera {i} was never reset: it has no frame yet")
        bank, j = self.memory_of(i), int(self._last[i])
        return bank.frames(j), bank.poses[j].copy()

    # ---------------------------------------------------------------- reset / step

    def reset(self, i: int, first_frame, pose, prompt: str | None = None, seed: int | None = None):
        """(Re)start world i from a real frame uint8 (H, W, 3) at planar pose (3,).

        In shared-memory mode the bank is cleared only when camera 0 resets; other cameras join it.
        """
        if not 0 <= i < self.num_worlds:
            raise IndexError(f"world index {i} out of range for {self.num_worlds} worlds")
        frame = np.asarray(first_frame)
        S = self.cfg.frame_size
        if frame.dtype != np.uint8 or frame.shape != (S, S, 3):
            raise ValueError(f"first_frame must be uint8 ({S}, {S}, 3) for this model, got {frame.dtype} {frame.shape}")
        pose = np.asarray(pose, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(pose)):
            raise ValueError(f"pose must be finite (x, y, yaw), got {pose}")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str or None, got {type(prompt).__name__}")
        bank = 0 if self.shared_memory else i
        if not self.shared_memory or i == 0:
            self.memories[bank].clear()
            self._clock[bank] = 0
        mem = self.memories[bank]
        seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self._gen[i] = torch.Generator(device=self.device).manual_seed(seed)
        self._rng[i] = np.random.default_rng(seed)
        self.prompts[i] = prompt
        idx = mem.append(frame[None], pose[None], times=np.array([self._clock[bank]]), source=i)
        self._clock[bank] += 1
        self._last[i] = int(idx[-1])
        self.last_retrieved[i] = np.zeros(0, np.int64)

    def _context(self, i: int, targets: np.ndarray) -> np.ndarray:
        """Retrieve k memory indices for world i, oldest first, with its own newest frame last."""
        mem = self.memory_of(i)
        times = np.asarray(mem.times, dtype=np.float64)
        if self.shared_memory:  # "newest" means this camera's own last frame, not another camera's
            times = times.copy()
            times[self._last[i]] = times.max() + 1
        idx = retrieve(self.retrieval, mem.poses, times, targets, self.context_size, self._rng[i])
        idx = idx[np.argsort(times[idx], kind="stable")]
        if idx[-1] != self._last[i]:
            raise RuntimeError(f"retrieval '{self.retrieval}' dropped the newest frame")
        return idx

    def observe(self, i: int, frames, poses):
        """Append real frames uint8 (T, H, W, 3) at poses (T, 3) to world i's memory (teacher forcing,
        ground-truth comparison). They become world i's newest frames."""
        frames, poses = np.asarray(frames), np.asarray(poses, dtype=np.float64).reshape(-1, 3)
        S = self.cfg.frame_size
        if frames.dtype != np.uint8 or frames.shape[1:] != (S, S, 3) or len(frames) != len(poses):
            raise ValueError(f"observe needs uint8 (T, {S}, {S}, 3) frames and (T, 3) poses, got {frames.shape} {poses.shape}")
        bank = 0 if self.shared_memory else i
        times = self._clock[bank] + np.arange(len(frames))
        self._clock[bank] += len(frames)
        idx = self.memories[bank].append(frames, poses, times=times, source=i)
        self._last[i] = int(idx[-1])

    @torch.no_grad()
    def step(self, target_poses, active=None, append: bool = True) -> np.ndarray:
        """Generate frames at the target poses.

        target_poses: (B, T, 3) planar poses, one per frame to generate; active: bool (B,) or None
        (all); append=False leaves memory untouched (e.g. to ``observe`` ground truth instead).
        T may exceed the model's frames per pass: the segment is then generated in consecutive
        chunks, each with its own retrieval. Returns uint8 (B, T, H, W, 3); rows of inactive
        worlds are zeros.
        """
        tp = np.asarray(target_poses, dtype=np.float64)
        chunk = self.cfg.train.target_frames
        if tp.ndim == 3 and tp.shape[1] > chunk:
            if not append:
                raise ValueError(f"append=False needs at most {chunk} frames per step, got {tp.shape[1]}")
            parts = [self.step(tp[:, j:j + chunk], active) for j in range(0, tp.shape[1], chunk)]
            return np.concatenate(parts, 1)
        return self._step(tp, active, append)

    def _step(self, target_poses, active, append) -> np.ndarray:
        tp, worlds = batch_target_poses(target_poses, self.num_worlds, active)
        B, T = tp.shape[:2]
        for i in worlds:
            if self._gen[i] is None:
                raise RuntimeError(f"world {i} was never reset: call reset(i, first_frame, pose) first")
        S = self.cfg.frame_size
        out = np.zeros((B, T, S, S, 3), np.uint8)
        if len(worlds) == 0:
            return out

        ctx_idx = [self._context(i, tp[i]) for i in worlds]
        latents = [self._latents(i, idx) for i, idx in zip(worlds, ctx_idx)]
        k = max(len(ix) for ix in ctx_idx)
        Ba, (C, h, w) = len(worlds), self.model.latent_shape
        ctx = torch.zeros(Ba, k, C, h, w, device=self.device)
        mask = torch.zeros(Ba, k, dtype=torch.bool, device=self.device)
        cext = np.zeros((Ba, k, 3, 4), np.float32)
        for b, (i, idx, z) in enumerate(zip(worlds, ctx_idx, latents)):
            n = len(idx)
            ctx[b, k - n:] = z
            mask[b, k - n:] = True
            e = planar_to_extrinsics(self.memory_of(i).poses[idx])
            cext[b, k - n:] = e
            cext[b, : k - n] = e[-1]
        tgt = torch.as_tensor(planar_to_extrinsics(tp[worlds]), dtype=torch.float32, device=self.device)
        noise = torch.stack([torch.randn((T, C, h, w), generator=self._gen[i], device=self.device) for i in worlds])
        ctx_eps = None
        if self.context_noise > 0:  # each world's own generator: a world's frames never depend on the others
            ctx_eps = torch.stack([torch.randn((k, C, h, w), generator=self._gen[i], device=self.device)
                                   for i in worlds])
        z = self.model.generate(ctx, mask, torch.as_tensor(cext, device=self.device), tgt,
                                [self.prompts[i] for i in worlds], steps=self.sample_steps,
                                guidance=self.guidance, noise=noise, ctx_eps=ctx_eps,
                                context_noise=self.context_noise)
        frames = self.model.decode(z.flatten(0, 1)).reshape(Ba, T, S, S, 3)
        for b, i in enumerate(worlds):
            out[i] = frames[b]
            self.last_retrieved[i] = ctx_idx[b]
            if not append:
                continue
            bank = 0 if self.shared_memory else i
            times = self._clock[bank] + np.arange(T)
            self._clock[bank] += T
            idx = self.memory_of(i).append(frames[b], tp[i], times=times, source=i)
            self.memory_of(i).set_latents(idx, z[b].float().cpu().numpy())
            self._last[i] = int(idx[-1])
        return out

    def _latents(self, i: int, idx: np.ndarray) -> torch.Tensor:
        """Cached latents for memory indices, encoding (once) the frames that have none yet."""
        mem = self.memory_of(i)
        lat, have = mem.get_latents(idx)
        if not have.all():
            miss = idx[~have]
            z = self.model.encode(mem.frames(miss)).float().cpu().numpy()
            mem.set_latents(miss, z)
            lat, have = mem.get_latents(idx)
        return torch.as_tensor(np.asarray(lat), dtype=torch.float32, device=self.device)
