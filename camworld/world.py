"""World: memory + retriever + a frame source, the paper's Algorithm 2, for B worlds at once.

Each step: the user gives the next camera poses (one per frame to generate); for every world,
memory retrieval picks k context frames (always including that world's newest frame) by their
poses; the frame source makes every active world's frames in one batched call; frames, poses (and
the latents the source made them from) are appended to memory.

Cameras, planar or 6-DoF. A camera is a planar pose ``(x, y, yaw)`` (level, at
``geometry.CAMERA_HEIGHT``) or a camera-to-world ``[R|t]`` (3, 4) / (4, 4) (OpenCV axes: any height,
pitch and roll). ``World.cameras`` (the frame source's) says which a world makes frames for:
``"planar"`` (the sim twin; a learned world whose model was trained on planar cameras, as every
model trained on the sim) or ``"6dof"`` (a model trained on 6-DoF cameras: its checkpoint's record
says ``"cameras": "6dof"``, ``camworld.model.frames.checkpoint_cameras``). A planar world takes
extrinsics only when they are level at eye height (planar poses in another form, used as such) and
refuses others with the reason; it retrieves by the paper's planar FOV rule on ``(x, y, yaw)``,
exactly as before extrinsics existed. A 6-DoF world takes both kinds and retrieves by the frustum
rule on the memory's stored extrinsics (``camworld.retrieval``; planar targets are lifted), as its
model was trained. Memory stores each frame's camera as given (``MemoryBank.append``).

``World`` alone owns memory, the frame clocks, the newest-frame rule and retrieval. The frame
source only makes pictures:

- the learned world (``camworld.model.frames.ModelFrames``, what ``World(model)`` builds): context
  latents from the memory's cache (each frame encoded at most once; generated frames keep the
  latents they were generated as), one batched sampling pass, decode;
- the ground-truth twin (``camworld.sim.frames.SimFrames``): renders the true frames of each world's
  scene at the target poses. Same memory and retrieval, so ``retrieved`` means the same in both.

A frame source has ``frame_size`` (H, W), ``frame_stride`` (sim frames per generated frame),
``frames_per_pass`` (most frames per call, None = any), ``gens`` (world -> torch.Generator of its
sampling noise, empty when it has none), ``cameras`` ("planar" or "6dof"; missing = "planar"),
``reset(i, seed, scene)`` and ``make_frames(worlds, banks, context, targets, prompts) -> (uint8
(B, T, H, W, 3), latents (B, T, ...) or None)`` with targets (B, T, 3) planar poses, or (B, T, 3, 4)
camera-to-world extrinsics for a "6dof" source.

With ``shared_memory=True`` all B cameras live in ONE world and share one memory bank: what one
camera generated, another retrieves when it looks at the same place (multi-agent).

Letters: B worlds, T frames per step, k context size, H/W frame size.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from camworld import threads
from camworld.profile import section
from camworld.geometry import CAMERA_HEIGHT, as_extrinsics, batch_target_poses, extrinsics_to_planar
from camworld.memory import MemoryBank
from camworld.retrieval import DEFAULT_STRATEGY as DEFAULT_RETRIEVAL
from camworld.retrieval import STRATEGIES, retrieve


LEVEL_TOL = 1e-6        # a camera within this of level at CAMERA_HEIGHT is a planar pose


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float, device: str):
    from camworld.model import WorldModel

    return WorldModel.load(path, device=device)          # with its trained_cameras (module doc)


def load_world_model(checkpoint=None, device="auto"):
    """Load (and cache per process) a world-model checkpoint; None = the shipped default. The model's
    ``trained_cameras`` ("planar" or "6dof") comes from the checkpoint's record
    (``camworld.model.frames.checkpoint_cameras``)."""
    from camworld.model import DEFAULT_CHECKPOINT, resolve_device

    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.exists():
        raise FileNotFoundError(f"no world-model checkpoint at {path}")
    dev = resolve_device(device)
    return _load_cached(str(path.resolve()), path.stat().st_mtime, str(dev))


class StepResult(NamedTuple):
    """What one ``World.step_result`` made.

    frames: uint8 (B, T, H, W, 3), zeros in the rows of inactive worlds; retrieved: per world, the
    int64 memory indices used as context (oldest first, its newest frame last; for a segment made in
    several passes, the last pass's), empty for inactive worlds.
    """

    frames: np.ndarray
    retrieved: list


def planar_cameras(E: np.ndarray) -> np.ndarray:
    """bool (...,): camera-to-world [R|t] (..., 3, 4) that are level at ``CAMERA_HEIGHT`` (within
    ``LEVEL_TOL``), i.e. planar poses: their z row is that of ``planar_to_extrinsics``, [0, -1, 0 | h]."""
    E = np.asarray(E, np.float64)
    return ((np.abs(E[..., 2, :3] - (0.0, -1.0, 0.0)).max(-1) <= LEVEL_TOL)
            & (np.abs(E[..., 2, 3] - CAMERA_HEIGHT) <= LEVEL_TOL))


def _off_plane(E: np.ndarray, name: str, why: str) -> ValueError:
    """The error for 6-DoF cameras given to a planar world, naming the first one and what it is."""
    bad = np.argwhere(~planar_cameras(E))[0]
    e = E[tuple(bad)]
    tilt = np.rad2deg(np.arccos(np.clip(-e[2, 1], -1.0, 1.0)))
    at = f"{name}[{', '.join(map(str, bad))}]" if len(bad) else name
    return ValueError(f"{at} is a 6-DoF camera (height {e[2, 3]:.3g} m, tilted {tilt:.3g} degrees from level) but this "
                      f"world is planar ({why}): it takes (x, y, yaw) poses, or extrinsics level at "
                      f"{CAMERA_HEIGHT} m. 6-DoF cameras need a learned world whose model was trained on 6-DoF "
                      "cameras (its checkpoint's record says \"cameras\": \"6dof\"; camworld train --data on "
                      "videos with 6-DoF cameras; model.trained_cameras = '6dof' before World(model) forces it)")


class World:
    """B worlds (or B cameras in one shared world) stepped in one batched call of a frame source.

    ``World(model, ...)`` is the learned world (``sample_steps``, ``guidance``, ``context_noise``,
    ``device``, ``dtype`` (the DiT's sampling dtype, ``model.world_model.inference_dtype``),
    ``frames_per_pass`` and the warp settings ``warp_start``, ``warp_depth``, ``warp_source``, ``warp_paste``,
    ``warp_space``, ``warp_fill`` (``camworld.model.warp``), ``network_context`` (context frames the DiT
    sees; 0 = all), ``novel_start`` (flow time of what the warp start's source did not see), ``refine`` (the refine net
    of what no context frame saw, ``camworld.model.refine``; None = the checkpoint's) and ``learned_depth`` (``camworld.model.depth``; None = the checkpoint's) go to
    its ``ModelFrames``); ``World(SimFrames(...), ...)`` is the ground-truth twin.
    ``torch_threads``: torch intra-op threads for this process (``torch.set_num_threads``); None = the
    thread policy of ``camworld.threads`` (a worker process takes its fair share of the cores).
    What a learned world makes frames for ("planar" or "6dof", module doc) is what its model was trained
    on: ``model.trained_cameras``, set from the checkpoint's record by ``load_world_model`` ("planar"
    without it)."""

    def __init__(self, model, *, num_worlds: int = 1, retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, sample_steps: int | None = None, guidance: float | None = None,
                 memory_capacity: int = 100_000, shared_memory: bool = False, device="auto",
                 context_noise: float | None = None, torch_threads: int | None = None, dtype="auto",
                 frames_per_pass: int | None = None, warp_start: float | None = None,
                 warp_depth: float | None = None, warp_source: str | None = None, warp_paste: bool | None = None,
                 learned_depth: bool | None = None, warp_space: str | None = None,
                 warp_fill: str | None = None, network_context: int | None = None,
                 novel_start: float | None = None, refine: bool | None = None):
        if retrieval not in STRATEGIES:
            raise ValueError(f"unknown retrieval strategy '{retrieval}'; choose from {sorted(STRATEGIES)}")
        if int(num_worlds) < 1:
            raise ValueError(f"num_worlds must be >= 1, got {num_worlds}")
        if int(context_size) < 1:
            raise ValueError(f"context_size must be >= 1 (it includes the newest frame), got {context_size}")
        if hasattr(model, "make_frames"):             # a frame source (the sim twin, or your own)
            learned = ((k, v) for k, v in (("sample_steps", sample_steps), ("guidance", guidance),
                                           ("context_noise", context_noise), ("torch_threads", torch_threads),
                                           ("dtype", None if dtype == "auto" else dtype),
                                           ("frames_per_pass", frames_per_pass), ("warp_start", warp_start),
                                           ("warp_depth", warp_depth), ("warp_source", warp_source),
                                           ("warp_paste", warp_paste), ("learned_depth", learned_depth),
                                           ("warp_space", warp_space), ("warp_fill", warp_fill),
                                           ("network_context", network_context),
                                           ("novel_start", novel_start), ("refine", refine)))
            given = [k for k, v in learned if v is not None]
            if given and not hasattr(model, "model"):
                raise ValueError(f"{given} only apply to the learned world; this frame source is "
                                 f"{type(model).__name__}")
            self.source = model
            self.torch_threads = None
        else:
            self.torch_threads = threads.apply(torch_threads)   # the process's fair share (camworld.threads)
            from camworld.model.frames import ModelFrames

            self.source = ModelFrames(model, device, sample_steps, guidance, context_noise, dtype, frames_per_pass,
                                      num_worlds=num_worlds, warp_start=warp_start, warp_depth=warp_depth,
                                      warp_source=warp_source, warp_paste=warp_paste, learned_depth=learned_depth,
                                      warp_space=warp_space, warp_fill=warp_fill,
                                      network_context=network_context, novel_start=novel_start,
                                      refine=refine)
        self.num_worlds = int(num_worlds)
        self.retrieval, self.context_size = retrieval, int(context_size)
        self.shared_memory = bool(shared_memory)
        H, W = self.source.frame_size
        n_banks = 1 if shared_memory else self.num_worlds
        self.memories = [MemoryBank(frame_shape=(H, W, 3), capacity=memory_capacity) for _ in range(n_banks)]
        self.prompts: list = [None] * self.num_worlds
        self._rng = [None] * self.num_worlds           # per-world np.random.Generator (retrieval)
        self._last = np.full(self.num_worlds, -1)      # memory index of each world's newest frame
        self._clock = np.zeros(n_banks, np.int64)      # frame counter per memory bank
        self.last_retrieved = [np.zeros(0, np.int64) for _ in range(self.num_worlds)]

    # the learned source's settings (None for the sim twin)
    model = property(lambda self: getattr(self.source, "model", None))
    cfg = property(lambda self: getattr(self.source, "cfg", None))
    device = property(lambda self: getattr(self.source, "device", None))
    sample_steps = property(lambda self: getattr(self.source, "sample_steps", None))
    guidance = property(lambda self: getattr(self.source, "guidance", None))
    context_noise = property(lambda self: getattr(self.source, "context_noise", None))
    dtype = property(lambda self: getattr(self.source, "dtype", None))
    frames_per_pass = property(lambda self: getattr(self.source, "frames_per_pass", None))
    warp_start = property(lambda self: getattr(self.source, "warp_start", None))
    warp_depth = property(lambda self: getattr(self.source, "warp_depth", None))
    warp_source = property(lambda self: getattr(self.source, "warp_source", None))
    warp_paste = property(lambda self: getattr(self.source, "warp_paste", None))
    warp_space = property(lambda self: getattr(self.source, "warp_space", None))
    warp_fill = property(lambda self: getattr(self.source, "warp_fill", None))
    network_context = property(lambda self: getattr(self.source, "network_context", None))
    novel_start = property(lambda self: getattr(self.source, "novel_start", None))
    refine = property(lambda self: getattr(self.source, "refine", None))
    learned_depth = property(lambda self: getattr(self.source, "learned_depth", None))

    @property
    def cameras(self) -> str:
        """ "planar" or "6dof": the cameras this world makes frames for (module doc)."""
        return getattr(self.source, "cameras", "planar")

    @property
    def frame_size(self) -> tuple:
        return tuple(self.source.frame_size)

    @property
    def frame_stride(self) -> int:
        return int(self.source.frame_stride)

    def memory_of(self, i: int) -> MemoryBank:
        return self.memories[0 if self.shared_memory else i]

    def _bank(self, i: int) -> int:
        return 0 if self.shared_memory else int(i)

    # ---------------------------------------------------------------- state (for camworld.world_io)

    def camera_state(self, i: int) -> dict:
        """World i's per-camera state: ``prompt``, ``last`` (memory index of its newest frame, -1 before
        reset), ``last_retrieved``, ``rng`` (numpy Generator, retrieval) and ``gen`` (torch Generator,
        sampling noise; None without one). The live objects: copy before mutating."""
        return {"prompt": self.prompts[i], "last": int(self._last[i]), "last_retrieved": self.last_retrieved[i],
                "rng": self._rng[i], "gen": self.source.gens.get(i)}

    def set_camera_state(self, i: int, prompt, last: int, last_retrieved, rng, gen):
        """Restore what ``camera_state`` returned (validated by the caller against the memory bank)."""
        self.prompts[i], self._last[i] = prompt, int(last)
        self.last_retrieved[i] = np.asarray(last_retrieved, np.int64).reshape(-1)
        self._rng[i] = rng
        if gen is not None:
            self.source.gens[i] = gen

    def bank_clock(self, bank: int) -> int:
        """Frames ever appended to memory bank ``bank`` (its next timestamp)."""
        return int(self._clock[bank])

    def set_bank(self, bank: int, memory: MemoryBank, clock: int):
        """Replace memory bank ``bank`` (closing the old one) and set its frame clock."""
        self.memories[bank].close()
        self.memories[bank] = memory
        self._clock[bank] = int(clock)

    def newest(self, i: int) -> tuple:
        """The newest frame uint8 (H, W, 3) and planar pose (3,) of camera/world ``i`` (where it stands; its
        full camera: ``memory_of(i).extrinsics([camera_state(i)["last"]])``)."""
        if self._last[i] < 0:
            raise RuntimeError(f"camera {i} was never reset: it has no frame yet")
        bank, j = self.memory_of(i), int(self._last[i])
        return bank.frames(j), bank.poses[j].copy()

    # ---------------------------------------------------------------- cameras in

    def _poses(self, poses, name: str, lead: tuple) -> np.ndarray:
        """Validate cameras of shape ``lead`` + (3,) planar or + (3, 4) / (4, 4) extrinsics -> float64 planar
        (lead + (3,)) or extrinsics (lead + (3, 4)). A planar world gets extrinsics level at eye height as
        their planar poses, and refuses other extrinsics."""
        shape = np.shape(poses)
        n = len(lead)
        if len(shape) == n + 2 and shape[n:] in ((3, 4), (4, 4)) and shape[:n] == lead:
            E = as_extrinsics(poses, name)
            if self.cameras == "6dof":
                return E
            if not planar_cameras(E).all():
                raise _off_plane(E, name, f"its frames come from {type(self.source).__name__}"
                                 + (", a model trained on planar cameras" if self.model is not None else ""))
            return extrinsics_to_planar(E)
        p = np.asarray(poses, dtype=np.float64)
        if p.size == 3 * int(np.prod(lead)) and p.ndim <= n + 2:
            p = p.reshape(lead + (3,))
        if p.shape != lead + (3,):
            dims = ", ".join(map(str, lead + ("3",)))
            raise ValueError(f"{name} must be ({dims}) planar poses (x, y, yaw) or ({dims}, 4) camera-to-world "
                             f"extrinsics, got shape {shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError(f"{name} must be finite, got {p}")
        return p

    # ---------------------------------------------------------------- reset / step

    def reset(self, i: int, first_frame, pose, prompt: str | None = None, seed: int | None = None, scene=None):
        """(Re)start world i from a real frame uint8 (H, W, 3) at a camera: a planar pose (3,), or
        camera-to-world extrinsics (3, 4) / (4, 4) (a "6dof" world; module doc); ``scene``: the sim
        twin's source scene (the learned world needs none).

        In shared-memory mode the bank is cleared only when camera 0 resets; other cameras join it.
        """
        if not 0 <= i < self.num_worlds:
            raise IndexError(f"world index {i} out of range for {self.num_worlds} worlds")
        frame = np.asarray(first_frame)
        H, W = self.frame_size
        if frame.dtype != np.uint8 or frame.shape != (H, W, 3):
            raise ValueError(f"first_frame must be uint8 ({H}, {W}, 3) for this world, got {frame.dtype} {frame.shape}")
        pose = self._poses(pose, "pose", ())
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str or None, got {type(prompt).__name__}")
        seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.source.reset(i, seed, scene)
        bank = self._bank(i)
        if not self.shared_memory or i == 0:
            self.memories[bank].clear()
            self._clock[bank] = 0
        self._rng[i] = np.random.default_rng(seed)
        self.prompts[i] = prompt
        idx = self.memories[bank].append(frame[None], pose[None], times=np.array([self._clock[bank]]), source=i,
                                         observed=True)
        self._clock[bank] += 1
        self._last[i] = int(idx[-1])
        self.last_retrieved[i] = np.zeros(0, np.int64)

    def _context(self, i: int, targets: np.ndarray) -> np.ndarray:
        """Retrieve k memory indices for world i, oldest first, with its own newest frame last: a planar world
        by the planar FOV rule on (x, y, yaw), a 6-DoF one by the frustum rule on the stored extrinsics."""
        mem = self.memory_of(i)
        times = mem.times                    # float64 views, no copies; the bank's index spares the O(M) scans
        if self.shared_memory:  # "newest" means this camera's own last frame, not another camera's
            times = times.copy()
            times[self._last[i]] = times.max() + 1
        poses = mem.extrinsics() if self.cameras == "6dof" else mem.poses
        idx = retrieve(self.retrieval, poses, times, targets, self.context_size, self._rng[i], index=mem.index)
        idx = idx[np.argsort(times[idx], kind="stable")]
        if idx[-1] != self._last[i]:
            raise RuntimeError(f"retrieval '{self.retrieval}' dropped the newest frame")
        return idx

    def observe(self, i: int, frames, poses):
        """Append real frames uint8 (T, H, W, 3) at poses (T, 3), or extrinsics (T, 3, 4) / (T, 4, 4) in a
        "6dof" world, to world i's memory (teacher forcing, ground-truth comparison). They become world i's
        newest frames."""
        frames = np.asarray(frames)
        H, W = self.frame_size
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (H, W, 3):
            raise ValueError(f"observe needs uint8 (T, {H}, {W}, 3) frames, got {frames.dtype} {frames.shape}")
        poses = self._poses(poses, "poses", (len(frames),))
        bank = self._bank(i)
        times = self._clock[bank] + np.arange(len(frames))
        self._clock[bank] += len(frames)
        idx = self.memories[bank].append(frames, poses, times=times, source=i, observed=True)
        self._last[i] = int(idx[-1])

    def step(self, target_poses, active=None, append: bool = True) -> np.ndarray:
        """Generate frames at the target poses -> uint8 (B, T, H, W, 3) (``step_result(...).frames``).

        target_poses: (B, T, 3) planar poses, one per frame to generate, or (B, T, 3, 4) / (B, T, 4, 4)
        camera-to-world extrinsics (a "6dof" world; a planar one takes them level at eye height); active:
        bool (B,) or None (all; the extrinsics of inactive worlds are not read: zeros will do); append=False
        leaves memory untouched (e.g. to ``observe`` ground truth instead).
        T may exceed the source's frames per pass: the segment is then generated in consecutive
        chunks, each with its own retrieval. Rows of inactive worlds are zeros.
        """
        return self.step_result(target_poses, active, append).frames

    def step_result(self, target_poses, active=None, append: bool = True) -> StepResult:
        """As ``step``, returning the frames and each world's retrieved memory indices (``StepResult``)."""
        tp = np.asarray(target_poses, dtype=np.float64)
        chunk = self.source.frames_per_pass
        if chunk is not None and tp.ndim in (3, 4) and tp.shape[1] > chunk:
            if not append:
                raise ValueError(f"append=False needs at most {chunk} frames per step, got {tp.shape[1]}")
            parts = [self._step(tp[:, j:j + chunk], active, True) for j in range(0, tp.shape[1], chunk)]
            return StepResult(np.concatenate([p.frames for p in parts], 1), parts[-1].retrieved)
        return self._step(tp, active, append)

    def _targets(self, tp: np.ndarray, active) -> tuple:
        """-> (targets float64 (B, T, 3) planar or (B, T, 3, 4) extrinsics, active world indices)."""
        if tp.ndim != 4:
            return batch_target_poses(tp, self.num_worlds, active)
        B = self.num_worlds
        if tp.shape[0] != B or tp.shape[1] < 1 or tp.shape[2:] not in ((3, 4), (4, 4)):
            raise ValueError(f"target_poses must be ({B}, T >= 1, 3) planar poses or ({B}, T >= 1, 3, 4) "
                             f"camera-to-world extrinsics, got {tp.shape}")
        worlds = np.flatnonzero(np.ones(B, bool) if active is None else np.asarray(active, bool).reshape(B))
        # a planar world gets level extrinsics as planar poses (the exact planar path); inactive rows stay zero
        out = np.zeros(tp.shape[:2] + ((3,) if self.cameras == "planar" else (3, 4)))
        for i in worlds:
            out[i] = self._poses(tp[i], f"target_poses[{i}]", (tp.shape[1],))
        return out, worlds

    def _step(self, target_poses, active, append) -> StepResult:
        tp, worlds = self._targets(np.asarray(target_poses, dtype=np.float64), active)
        B, T = tp.shape[:2]
        worlds = [int(i) for i in worlds]
        for i in worlds:
            if self._rng[i] is None:
                raise RuntimeError(f"world {i} was never reset: call reset(i, first_frame, pose) first")
        H, W = self.frame_size
        out = np.zeros((B, T, H, W, 3), np.uint8)
        retrieved = [np.zeros(0, np.int64) for _ in range(B)]
        if len(worlds) == 0:
            return StepResult(out, retrieved)
        with section("retrieval"):
            ctx = [self._context(i, tp[i]) for i in worlds]        # every retrieval first, then the appends
        frames, latents = self.source.make_frames(worlds, [self.memory_of(i) for i in worlds], ctx, tp[worlds],
                                                  [self.prompts[i] for i in worlds])
        with section("memory"):
            for b, i in enumerate(worlds):
                out[i] = frames[b]
                retrieved[i] = self.last_retrieved[i] = ctx[b]
                if not append:
                    continue
                bank = self._bank(i)
                times = self._clock[bank] + np.arange(T)
                self._clock[bank] += T
                idx = self.memory_of(i).append(frames[b], tp[i], times=times, source=i)
                if latents is not None:
                    self.memory_of(i).set_latents(idx, latents[b])
                self._last[i] = int(idx[-1])
        return StepResult(out, retrieved)

    def close(self):
        """Close every memory bank (spill files)."""
        for m in self.memories:
            m.close()
