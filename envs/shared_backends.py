"""Shared-world backends: B cameras in ONE world with ONE memory bank (for the multi-agent env).

They keep the backend interface of ``camworld.envs.backends`` (``reset(i, ...)``, ``step(targets
(B, T, 3), active)``, ``last_retrieved[i]``, ``memories[i]``), so every single-agent task env can
drive one camera of them through its ``slot``. The difference: ``memories[i]`` is the same bank for
every camera, each frame is tagged with the camera that made it (``bank.sources``), and retrieval
for camera i searches every camera's frames, with camera i's own newest frame always in its context.

- ``SharedModelBackend``: the learned world, ``World(shared_memory=True)``: what camera A generated,
  camera B retrieves and is conditioned on when it looks at the same place. One batched pass.
- ``SharedSimBackend``: the ground-truth twin with the same shared bank and the same retrieval rule.

Reset order matters: ``reset(0, ...)`` starts a new world (clears the bank); ``reset(i > 0, ...)``
adds camera i to the current one, as ``World.reset`` does in shared mode.

Letters: B cameras, T frames per step, H/W frame size.
"""

from __future__ import annotations

import numpy as np

from camworld.envs.backends import BACKENDS, DEFAULT_RETRIEVAL, ModelBackend, SimBackend


class SharedModelBackend(ModelBackend):
    """``ModelBackend`` over one ``World(shared_memory=True)`` (built here, or one you pass, e.g. loaded
    with ``camworld.world_io.load_world``)."""

    shared_memory = True

    def __init__(self, num_worlds: int = 1, checkpoint=None, device="auto", retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, sample_steps=None, guidance=None,
                 world=None):
        from camworld.world import World, load_world_model

        if world is None:
            model = load_world_model(checkpoint, device=device)
            world = World(model, num_worlds=int(num_worlds), retrieval=retrieval, context_size=int(context_size),
                          sample_steps=sample_steps, guidance=guidance, memory_capacity=memory_capacity,
                          shared_memory=True, device=model.device)
        elif not world.shared_memory:
            raise ValueError("SharedModelBackend needs a World(shared_memory=True); this World keeps one memory per "
                             "camera (use ModelBackend for separate worlds)")
        self.world, self.model = world, world.model
        self.num_worlds = world.num_worlds
        self.frame_size = tuple(world.frame_size)
        self.retrieval, self.context_size = world.retrieval, world.context_size
        self.frame_stride = int(world.cfg.train.frame_stride)


class SharedSimBackend(SimBackend):
    """The ground-truth twin for B cameras in one scene, one shared memory bank (mirrors ``World``)."""

    shared_memory = True

    def __init__(self, num_worlds: int = 1, frame_size=(64, 64), retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, frame_stride: int = 4):
        super().__init__(num_worlds, frame_size, retrieval, context_size, memory_capacity, frame_stride)
        for m in self.memories[1:]:
            m.close()
        self.bank = self.memories[0]
        self.memories = [self.bank] * self.num_worlds        # memories[i] is camera i's (shared) bank
        self._clock = np.zeros(1, np.int64)                   # one frame counter for the one bank

    def reset(self, i: int, first_frame, pose, prompt=None, seed=None, scene=None):
        if not 0 <= int(i) < self.num_worlds:
            raise IndexError(f"camera index {i} out of range for {self.num_worlds} cameras")
        if scene is None:
            raise ValueError("the sim backend renders a procedural scene: reset needs scene=make_scene(seed); "
                             "to start from your own image use the learned world (backend='model')")
        H, W = self.frame_size
        frame = np.asarray(first_frame)
        if frame.dtype != np.uint8 or frame.shape != (H, W, 3):
            raise ValueError(f"first_frame must be uint8 ({H}, {W}, 3), got {frame.dtype} {frame.shape}")
        pose = np.asarray(pose, np.float64).reshape(1, 3)
        if i == 0:                                            # camera 0 starts a new world
            self.bank.clear()
            self._clock[0] = 0
        self.scenes[i] = scene
        self._rng[i] = np.random.default_rng(0 if seed is None else int(seed))
        idx = self.bank.append(frame[None], pose, times=self._clock[:1].copy(), source=int(i))
        self._clock[0] += 1
        self._last[i] = int(idx[-1])
        self.last_retrieved[i] = np.zeros(0, np.int64)

    def _context(self, i: int, targets: np.ndarray) -> np.ndarray:
        """k memory indices for camera i, oldest first, its own newest frame last (as ``World._context``)."""
        from camworld.retrieval import retrieve

        times = np.array(self.bank.times, dtype=np.float64)
        times[self._last[i]] = times.max() + 1               # "newest" = this camera's own last frame
        idx = np.asarray(retrieve(self.retrieval, self.bank.poses, times, targets, self.context_size, self._rng[i]),
                         np.int64)
        return idx[np.argsort(times[idx], kind="stable")]

    def step(self, target_poses, active=None) -> np.ndarray:
        from camworld.sim import render

        tp = np.asarray(target_poses, np.float64)
        B, (H, W) = self.num_worlds, self.frame_size
        if tp.ndim != 3 or tp.shape[0] != B or tp.shape[2] != 3 or tp.shape[1] < 1:
            raise ValueError(f"target_poses must be ({B}, T >= 1, 3), got {tp.shape}")
        if not np.all(np.isfinite(tp)):
            raise ValueError("target_poses contain NaN or inf")
        act = np.ones(B, bool) if active is None else np.asarray(active, bool).reshape(B)
        cams = np.flatnonzero(act)
        for i in cams:
            if self.scenes[i] is None:
                raise RuntimeError(f"camera {i} was never reset: call reset(i, first_frame, pose, scene=...) first")
        T = tp.shape[1]
        out = np.zeros((B, T, H, W, 3), np.uint8)
        ctx = [self._context(i, tp[i]) for i in cams]        # all retrievals first, then all appends (as World)
        for i, idx in zip(cams, ctx):
            out[i] = render(self.scenes[i], tp[i], H, W)[0]
            self.last_retrieved[i] = idx
        for i in cams:
            new = self.bank.append(out[i], tp[i], times=self._clock[0] + np.arange(T), source=int(i))
            self._clock[0] += T
            self._last[i] = int(new[-1])
        return out

    def close(self):
        self.scenes = [None] * self.num_worlds
        self.bank.close()


def make_shared_backend(kind: str, num_cameras: int, *, frame_size=None, retrieval: str = DEFAULT_RETRIEVAL,
                        context_size: int = 8, checkpoint=None, device="auto", memory_capacity: int = 100_000,
                        sample_steps=None, guidance=None):
    """A shared-world backend by name ("sim" or "model"); ``frame_size`` None = the backend's native size."""
    if kind == "sim":
        if checkpoint is not None:
            raise ValueError("checkpoint= only applies to the learned world (backend='model'); the sim twin renders "
                             "the ground truth")
        return SharedSimBackend(num_cameras, (64, 64) if frame_size is None else frame_size, retrieval, context_size,
                                memory_capacity)
    if kind == "model":
        be = SharedModelBackend(num_cameras, checkpoint, device, retrieval, context_size, memory_capacity,
                                sample_steps, guidance)
        if frame_size is not None and tuple(frame_size) != be.frame_size:
            H, W = be.frame_size
            raise ValueError(f"frame_size={tuple(frame_size)} but this checkpoint generates {H}x{W} frames; omit "
                             f"frame_size (or pass frame_size={H}), or load a checkpoint trained at that size")
        return be
    raise ValueError(f"unknown backend {kind!r}; choose from {BACKENDS}")
