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

Letters: B worlds, T frames per step, H/W frame size.
"""

from __future__ import annotations

import numpy as np

from camworld.envs.actions import DEFAULT_FRAME_STRIDE

BACKENDS = ("sim", "model")
DEFAULT_RETRIEVAL = "coverage"


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
    """

    name = "sim"
    needs_scene = True

    def __init__(self, num_worlds: int = 1, frame_size=(64, 64), retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, frame_stride: int = DEFAULT_FRAME_STRIDE):
        from camworld.memory import MemoryBank

        _check_common(num_worlds, retrieval, context_size)
        self.num_worlds = int(num_worlds)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.retrieval, self.context_size = retrieval, int(context_size)
        self.frame_stride = int(frame_stride)
        H, W = self.frame_size
        self.memories = [MemoryBank(frame_shape=(H, W, 3), capacity=memory_capacity) for _ in range(self.num_worlds)]
        self.scenes = [None] * self.num_worlds
        self.last_retrieved = [np.zeros(0, np.int64) for _ in range(self.num_worlds)]
        self._rng = [None] * self.num_worlds
        self._clock = np.zeros(self.num_worlds, np.int64)
        self._last = np.full(self.num_worlds, -1)

    def reset(self, i: int, first_frame, pose, prompt=None, seed=None, scene=None):
        if scene is None:
            raise ValueError("the sim backend renders a procedural scene: reset needs scene=make_scene(seed); "
                             "to start from your own image use the learned world (ContextAsMemory-v0)")
        H, W = self.frame_size
        frame = np.asarray(first_frame)
        if frame.dtype != np.uint8 or frame.shape != (H, W, 3):
            raise ValueError(f"first_frame must be uint8 ({H}, {W}, 3), got {frame.dtype} {frame.shape}")
        self.scenes[i] = scene
        self._rng[i] = np.random.default_rng(0 if seed is None else int(seed))
        mem = self.memories[i]
        mem.clear()
        self._clock[i] = 0
        idx = mem.append(frame[None], np.asarray(pose, np.float64).reshape(1, 3), times=np.array([0]))
        self._clock[i] = 1
        self._last[i] = int(np.asarray(idx).reshape(-1)[-1])
        self.last_retrieved[i] = np.zeros(0, np.int64)

    def step(self, target_poses, active=None) -> np.ndarray:
        from camworld.retrieval import retrieve
        from camworld.sim import render

        tp = np.asarray(target_poses, np.float64)
        B, (H, W) = self.num_worlds, self.frame_size
        if tp.ndim != 3 or tp.shape[0] != B or tp.shape[2] != 3 or tp.shape[1] < 1:
            raise ValueError(f"target_poses must be ({B}, T >= 1, 3), got {tp.shape}")
        act = np.ones(B, bool) if active is None else np.asarray(active, bool).reshape(B)
        out = np.zeros((B, tp.shape[1], H, W, 3), np.uint8)
        for i in np.flatnonzero(act):
            if self.scenes[i] is None:
                raise RuntimeError(f"world {i} was never reset: call reset(i, first_frame, pose, scene=...) first")
            mem = self.memories[i]
            times = np.asarray(mem.times, np.float64)
            idx = retrieve(self.retrieval, np.asarray(mem.poses), times, tp[i], self.context_size, self._rng[i])
            self.last_retrieved[i] = np.asarray(idx, np.int64)[np.argsort(times[idx], kind="stable")]
            out[i] = render(self.scenes[i], tp[i], H, W)[0]
            T = tp.shape[1]
            new = mem.append(out[i], tp[i], times=self._clock[i] + np.arange(T))
            self._clock[i] += T
            self._last[i] = int(np.asarray(new).reshape(-1)[-1])
        return out

    def close(self):
        self.scenes = [None] * self.num_worlds
        for m in self.memories:
            m.close()


class ModelBackend:
    """The learned world: a thin adapter over ``camworld.world.World`` (one batched pass for B worlds)."""

    name = "model"
    needs_scene = False

    def __init__(self, num_worlds: int = 1, checkpoint=None, device="auto", retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, sample_steps=None, guidance=None):
        try:
            from camworld.world import World, load_world_model
        except ImportError as e:  # a partial install: say which piece is missing
            raise ImportError(f"the learned world needs camworld.world, which failed to import ({e}); "
                              "use CamWorld-v0 (the sim twin) meanwhile") from e
        _check_common(num_worlds, retrieval, context_size)
        self.model = load_world_model(checkpoint, device=device)
        self.world = World(self.model, num_worlds=int(num_worlds), retrieval=retrieval, context_size=int(context_size),
                           sample_steps=sample_steps, guidance=guidance, memory_capacity=memory_capacity,
                           device=self.model.device)
        self.num_worlds = int(num_worlds)
        self.frame_size = tuple(self.world.frame_size)
        self.retrieval, self.context_size = retrieval, int(context_size)
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
                 sample_steps=None, guidance=None):
    """Build a backend by name. ``frame_size`` None = the backend's native size (sim: 64x64)."""
    if kind == "sim":
        if checkpoint is not None:
            raise ValueError("checkpoint= only applies to the learned world (ContextAsMemory-v0); "
                             "CamWorld-v0 renders the ground-truth sim")
        return SimBackend(num_worlds, (64, 64) if frame_size is None else frame_size, retrieval, context_size,
                          memory_capacity)
    if kind == "model":
        be = ModelBackend(num_worlds, checkpoint, device, retrieval, context_size, memory_capacity, sample_steps, guidance)
        if frame_size is not None and tuple(frame_size) != be.frame_size:
            H, W = be.frame_size
            raise ValueError(f"frame_size={tuple(frame_size)} but this checkpoint generates {H}x{W} frames; "
                             f"omit frame_size (or pass frame_size={H}), or load a checkpoint trained at that size")
        return be
    raise ValueError(f"unknown backend {kind!r}; choose from {BACKENDS}")
