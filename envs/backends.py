"""Backends: what turns target camera poses into frames, for B worlds at once.

An env never talks to the generator directly: it holds a backend (its own, or a slot of one shared
by a vector env) with the interface of ``camworld.world.World``:

    backend.reset(i, first_frame uint8 (H, W, 3), pose (3,), prompt=None, seed=int, scene=None)
    frames = backend.step(target_poses (B, T, 3), active=None)  # -> uint8 (B, T, H, W, 3)
    backend.last_retrieved[i]   # int64 memory indices used as context in world i's last step
    backend.memories[i]         # world i's MemoryBank

- ``ModelBackend``: the learned world (``World``): B worlds in one batched forward pass.
- ``SimBackend``: the ground-truth twin. It renders the true frames of the source scene at the
  target poses and keeps the same memory bank and runs the same retrieval as ``World``, so
  ``info["retrieved"]`` means the same thing in both.
- Either with ``shared_memory=True``: B cameras in ONE world with ONE memory bank (the multi-agent
  env drives one camera per agent through its ``slot``).

Letters: B worlds, T frames per step, H/W frame size.
"""

from __future__ import annotations

import numpy as np

from camworld.envs.actions import DEFAULT_FRAME_STRIDE
from camworld.retrieval import DEFAULT_STRATEGY as DEFAULT_RETRIEVAL

BACKENDS = ("sim", "model")


def _check_common(num_worlds, retrieval, context_size):
    from camworld.retrieval import STRATEGIES

    if int(num_worlds) < 1:
        raise ValueError(f"num_worlds must be >= 1, got {num_worlds}")
    if retrieval not in STRATEGIES:
        raise ValueError(f"unknown retrieval strategy {retrieval!r}; choose from {sorted(STRATEGIES)}")
    if isinstance(context_size, bool) or not isinstance(context_size, (int, np.integer)) or context_size < 1:
        raise ValueError(f"context_size must be an int >= 1 (the newest frame plus k-1 retrieved), got {context_size!r}")


class SimBackend:
    """The ground-truth twin: renders the source scene at the target poses (``camworld.sim.render``).

    Memory and retrieval mirror ``World`` (same bank, same strategy, newest frame always in the
    context), but the retrieved frames are not used to make the picture: the sim needs no memory.

    ``shared_memory=True``: B cameras in one scene with ONE bank (as ``World(shared_memory=True)``):
    ``memories[i]`` is the same bank for every camera, each frame is tagged with its camera
    (``bank.sources``), and camera i's retrieval searches every camera's frames with its own newest
    frame always in its context. ``reset(0, ...)`` starts a new world (clears the bank); ``reset(i > 0,
    ...)`` adds camera i to it.
    """

    name = "sim"
    needs_scene = True

    def __init__(self, num_worlds: int = 1, frame_size=(64, 64), retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, frame_stride: int = DEFAULT_FRAME_STRIDE,
                 shared_memory: bool = False):
        from camworld.memory import MemoryBank

        _check_common(num_worlds, retrieval, context_size)
        self.num_worlds = int(num_worlds)
        self.shared_memory = bool(shared_memory)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.retrieval, self.context_size = retrieval, int(context_size)
        self.frame_stride = int(frame_stride)
        H, W = self.frame_size
        banks = [MemoryBank(frame_shape=(H, W, 3), capacity=memory_capacity)
                 for _ in range(1 if self.shared_memory else self.num_worlds)]
        self.memories = banks * self.num_worlds if self.shared_memory else banks   # memories[i]: world i's bank
        self.scenes = [None] * self.num_worlds
        self.last_retrieved = [np.zeros(0, np.int64) for _ in range(self.num_worlds)]
        self._rng = [None] * self.num_worlds
        self._clock = np.zeros(len(banks), np.int64)         # one frame counter per bank
        self._last = np.full(self.num_worlds, -1)

    def _bank(self, i: int) -> int:
        return 0 if self.shared_memory else int(i)

    def reset(self, i: int, first_frame, pose, prompt=None, seed=None, scene=None):
        if not 0 <= int(i) < self.num_worlds:
            raise IndexError(f"world index {i} out of range for {self.num_worlds} worlds")
        if scene is None:
            raise ValueError("the sim backend renders a procedural scene: reset needs scene=make_scene(seed); "
                             "to start from your own image use the learned world (ContextAsMemory-v0, "
                             "backend='model')")
        H, W = self.frame_size
        frame = np.asarray(first_frame)
        if frame.dtype != np.uint8 or frame.shape != (H, W, 3):
            raise ValueError(f"first_frame must be uint8 ({H}, {W}, 3), got {frame.dtype} {frame.shape}")
        b, mem = self._bank(i), self.memories[i]
        if not self.shared_memory or i == 0:                 # a new world (shared: camera 0 starts it)
            mem.clear()
            self._clock[b] = 0
        self.scenes[i] = scene
        self._rng[i] = np.random.default_rng(0 if seed is None else int(seed))
        idx = mem.append(frame[None], np.asarray(pose, np.float64).reshape(1, 3), times=self._clock[b:b + 1].copy(),
                         source=int(i) if self.shared_memory else None)
        self._clock[b] += 1
        self._last[i] = int(np.asarray(idx).reshape(-1)[-1])
        self.last_retrieved[i] = np.zeros(0, np.int64)

    def _context(self, i: int, targets: np.ndarray) -> np.ndarray:
        """k memory indices for world i, oldest first, its own newest frame last (as ``World._context``)."""
        from camworld.retrieval import retrieve

        mem = self.memories[i]
        times = np.asarray(mem.times, np.float64)
        if self.shared_memory:                               # "newest" = this camera's own last frame
            times = times.copy()
            times[self._last[i]] = times.max() + 1
        idx = np.asarray(retrieve(self.retrieval, np.asarray(mem.poses), times, targets, self.context_size,
                                  self._rng[i]), np.int64)
        return idx[np.argsort(times[idx], kind="stable")]

    def step(self, target_poses, active=None) -> np.ndarray:
        from camworld.sim import render

        from camworld.geometry import batch_target_poses

        tp, worlds = batch_target_poses(target_poses, self.num_worlds, active)
        B, (H, W) = self.num_worlds, self.frame_size
        for i in worlds:
            if self.scenes[i] is None:
                raise RuntimeError(f"world {i} was never reset: call reset(i, first_frame, pose, scene=...) first")
        T = tp.shape[1]
        out = np.zeros((B, T, H, W, 3), np.uint8)
        ctx = [self._context(i, tp[i]) for i in worlds]      # all retrievals first, then all appends (as World)
        for i, idx in zip(worlds, ctx):
            out[i] = render(self.scenes[i], tp[i], H, W)[0]
            self.last_retrieved[i] = idx
        for i in worlds:
            b = self._bank(i)
            new = self.memories[i].append(out[i], tp[i], times=self._clock[b] + np.arange(T),
                                          source=int(i) if self.shared_memory else None)
            self._clock[b] += T
            self._last[i] = int(np.asarray(new).reshape(-1)[-1])
        return out

    def close(self):
        self.scenes = [None] * self.num_worlds
        for m in dict.fromkeys(self.memories):               # each bank once
            m.close()


class ModelBackend:
    """The learned world: a thin adapter over ``camworld.world.World`` (one batched pass for B worlds).

    ``shared_memory=True`` builds ``World(shared_memory=True)``: what camera A generated, camera B
    retrieves and is conditioned on when it looks at the same place. ``world=`` adopts a World you
    built or loaded (``camworld.world_io.load_world``) instead of building one."""

    name = "model"
    needs_scene = False

    def __init__(self, num_worlds: int = 1, checkpoint=None, device="auto", retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, sample_steps=None, guidance=None,
                 shared_memory: bool = False, world=None, torch_threads: int | None = None):
        try:
            from camworld.world import World, load_world_model
        except ImportError as e:  # a partial install: say which piece is missing
            raise ImportError(f"the learned world needs camworld.world, which failed to import ({e}); "
                              "use CamWorld-v0 (the sim twin) meanwhile") from e
        if world is None:
            _check_common(num_worlds, retrieval, context_size)
            from camworld import threads

            threads.apply(torch_threads)        # before loading: a forked worker must not use the parent's pool
            model = load_world_model(checkpoint, device=device)
            world = World(model, num_worlds=int(num_worlds), retrieval=retrieval, context_size=int(context_size),
                          sample_steps=sample_steps, guidance=guidance, memory_capacity=memory_capacity,
                          shared_memory=bool(shared_memory), device=model.device, torch_threads=torch_threads)
        elif bool(world.shared_memory) != bool(shared_memory):
            raise ValueError(f"shared_memory={shared_memory} but the World passed has shared_memory="
                             f"{world.shared_memory}: a shared backend needs World(shared_memory=True), separate "
                             "worlds need World(shared_memory=False)")
        self.world, self.model = world, world.model
        self.shared_memory = bool(world.shared_memory)
        self.num_worlds = int(world.num_worlds)
        self.frame_size = tuple(world.frame_size)
        self.retrieval, self.context_size = world.retrieval, int(world.context_size)
        self.frame_stride = int(self.model.cfg.train.frame_stride)

    @property
    def memories(self):
        return [self.world.memory_of(i) for i in range(self.num_worlds)]

    @property
    def last_retrieved(self):
        return self.world.last_retrieved

    def reset(self, i: int, first_frame, pose, prompt=None, seed=None, scene=None):
        self.world.reset(i, first_frame, pose, prompt=prompt, seed=seed)

    def step(self, target_poses, active=None) -> np.ndarray:
        return self.world.step(target_poses, active=active)

    def close(self):
        if self.world is not None:
            for m in self.world.memories:
                m.close()
            self.world = None


def make_backend(kind: str, num_worlds: int = 1, *, frame_size=None, retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, checkpoint=None, device="auto", memory_capacity: int = 100_000,
                 sample_steps=None, guidance=None, shared_memory: bool = False, torch_threads: int | None = None):
    """Build a backend by name. ``frame_size`` None = the backend's native size (sim: 64x64).
    ``shared_memory=True``: B cameras in one world with one memory bank (the multi-agent env).
    ``torch_threads``: the learned world's torch threads (None: ``camworld.threads`` policy)."""
    if kind == "sim":
        for name, value in (("checkpoint", checkpoint), ("torch_threads", torch_threads)):
            if value is not None:
                raise ValueError(f"{name}= only applies to the learned world (ContextAsMemory-v0, backend='model'); "
                                 "CamWorld-v0 renders the ground-truth sim with numpy")
        return SimBackend(num_worlds, (64, 64) if frame_size is None else frame_size, retrieval, context_size,
                          memory_capacity, shared_memory=shared_memory)
    if kind == "model":
        be = ModelBackend(num_worlds, checkpoint, device, retrieval, context_size, memory_capacity, sample_steps,
                          guidance, shared_memory=shared_memory, torch_threads=torch_threads)
        if frame_size is not None and tuple(frame_size) != be.frame_size:
            H, W = be.frame_size
            raise ValueError(f"frame_size={tuple(frame_size)} but this checkpoint generates {H}x{W} frames; "
                             f"omit frame_size (or pass frame_size={H}), or load a checkpoint trained at that size")
        return be
    raise ValueError(f"unknown backend {kind!r}; choose from {BACKENDS}")
