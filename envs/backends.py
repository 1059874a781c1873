"""Backends: an env's handle on a ``camworld.world.World`` of B worlds, learned or ground truth.

An env never talks to the generator directly: it holds a backend (its own, or a slot of one shared
by a vector env). Every backend is a ``World`` (which alone owns memory, clocks, the newest-frame
rule and retrieval) with one of two frame sources:

- ``ModelBackend``: the learned world (``World(model)``): B worlds in one batched forward pass.
- ``SimBackend``: the ground-truth twin (``World(SimFrames(...))``): renders the true frames of the
  source scene at the target poses. Same memory and retrieval code, so ``info["retrieved"]``
  means the same thing in both, by construction.
- Either with ``shared_memory=True``: B cameras in ONE world with ONE memory bank (the multi-agent
  env drives one camera per agent through its ``slot``).

    backend.reset(i, first_frame uint8 (H, W, 3), pose (3,), prompt=None, seed=int, scene=None)
    result = backend.step_result(target_poses (B, T, 3), active=None)   # World.StepResult
    backend.cameras              # "planar" or "6dof" (World.cameras): a "6dof" world also takes
                                 # extrinsics (3, 4) / (B, T, 3, 4) for pose and target_poses
    result.frames                # uint8 (B, T, H, W, 3)
    result.retrieved[i]          # int64 memory indices world i's context used
    backend.memories[i]          # world i's MemoryBank

Letters: B worlds, T frames per step, H/W frame size.
"""

from __future__ import annotations

import dataclasses

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


class Backend:
    """A ``World`` seen by the envs (see the module docstring); subclasses only build the World."""

    name = ""
    needs_scene = False

    def _adopt(self, world):
        self.world = world
        self.shared_memory = bool(world.shared_memory)
        self.num_worlds = int(world.num_worlds)
        self.frame_size = tuple(world.frame_size)
        self.retrieval, self.context_size = world.retrieval, int(world.context_size)
        self.frame_stride = int(world.frame_stride)
        self.cameras = world.cameras

    @property
    def memories(self) -> list:
        """memories[i]: world i's MemoryBank (the same bank for every camera of a shared world)."""
        return [self.world.memory_of(i) for i in range(self.num_worlds)]

    def reset(self, i: int, first_frame, pose, prompt=None, seed=None, scene=None):
        self.world.reset(i, first_frame, pose, prompt=prompt, seed=seed, scene=scene)

    def step_result(self, target_poses, active=None):
        return self.world.step_result(target_poses, active=active)

    def step(self, target_poses, active=None) -> np.ndarray:
        return self.world.step(target_poses, active=active)

    def close(self):
        if self.world is not None:
            self.world.close()
            self.world = None


class SimBackend(Backend):
    """The ground-truth twin: a ``World`` whose frames are rendered from each world's scene
    (``camworld.sim.frames.SimFrames``); ``reset`` needs ``scene=``.

    ``shared_memory=True``: B cameras in one scene with ONE bank: ``memories[i]`` is the same bank
    for every camera, each frame tagged with its camera (``bank.sources``); ``reset(0, ...)`` starts
    a new world (clears the bank), ``reset(i > 0, ...)`` adds camera i to it.
    """

    name = "sim"
    needs_scene = True

    def __init__(self, num_worlds: int = 1, frame_size=(64, 64), retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, frame_stride: int = DEFAULT_FRAME_STRIDE,
                 shared_memory: bool = False, world=None):
        from camworld.sim.frames import SimFrames
        from camworld.world import World

        if world is None:
            _check_common(num_worlds, retrieval, context_size)
            world = World(SimFrames(frame_size, frame_stride), num_worlds=int(num_worlds), retrieval=retrieval,
                          context_size=int(context_size), memory_capacity=memory_capacity,
                          shared_memory=bool(shared_memory))
        elif not isinstance(world.source, SimFrames):
            raise ValueError(f"SimBackend needs a World of SimFrames, got one of {type(world.source).__name__}")
        self._adopt(world)


class ModelBackend(Backend):
    """The learned world: ``World(model)``, one batched pass for B worlds.

    ``shared_memory=True`` builds ``World(shared_memory=True)``: what camera A generated, camera B
    retrieves and is conditioned on when it looks at the same place. ``world=`` adopts a World you
    built or loaded (``camworld.world_io.load_world``) instead of building one."""

    name = "model"

    def __init__(self, num_worlds: int = 1, checkpoint=None, device="auto", retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, memory_capacity: int = 100_000, sample_steps=None, guidance=None,
                 shared_memory: bool = False, world=None, torch_threads: int | None = None, dtype="auto",
                 frames_per_pass: int | None = None, warp_start: float | None = None,
                 warp_paste: bool | None = None, warp_space: str | None = None,
                 network_context: int | None = None, warp_fill: str | None = None,
                 learned_depth: bool | None = None):
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
                          shared_memory=bool(shared_memory), device=model.device, torch_threads=torch_threads,
                          dtype=dtype, frames_per_pass=frames_per_pass, warp_start=warp_start,
                          warp_paste=warp_paste, warp_space=warp_space, network_context=network_context,
                          warp_fill=warp_fill, learned_depth=learned_depth)
        elif world.model is None:
            raise ValueError(f"ModelBackend needs a learned World, got one whose frames come from "
                             f"{type(world.source).__name__}")
        elif bool(world.shared_memory) != bool(shared_memory):
            raise ValueError(f"shared_memory={shared_memory} but the World passed has shared_memory="
                             f"{world.shared_memory}: a shared backend needs World(shared_memory=True), separate "
                             "worlds need World(shared_memory=False)")
        self._adopt(world)
        self.model = world.model


def backend_for(world) -> Backend:
    """The backend over a ``World`` you built or loaded: ``ModelBackend`` for a learned one,
    ``SimBackend`` for one of ``SimFrames``."""
    if world.model is not None:
        return ModelBackend(world=world, shared_memory=world.shared_memory)
    return SimBackend(world=world)


@dataclasses.dataclass(frozen=True)
class WorldSpec:
    """Everything that builds an env's world, in one config passed whole (the envs' world keywords)."""

    kind: str = "sim"                   # "sim" (the ground-truth twin) or "model" (the learned world)
    retrieval: str = DEFAULT_RETRIEVAL  # strategy name (camworld.retrieval.STRATEGIES)
    context_size: int = 8               # k: the newest frame plus k - 1 retrieved
    frame_size: tuple | None = None     # (H, W); None = the world's own (sim 64x64, the checkpoint's)
    checkpoint: str | None = None       # learned world: a checkpoint path; None = the shipped one
    device: str = "auto"                # learned world: torch device
    memory_capacity: int = 100_000      # frames per memory bank kept in RAM (more spill to disk)
    sample_steps: int | None = None     # learned world: sampler steps (None: the checkpoint's)
    guidance: float | None = None       # learned world: text guidance scale (None: the checkpoint's)
    torch_threads: int | None = None    # learned world: torch threads (None: the camworld.threads policy)
    dtype: str = "auto"                 # learned world: the DiT's sampling dtype (auto: bfloat16 where fast)
    frames_per_pass: int | None = None  # learned world: frames per sampling pass (None: the checkpoint's)
    warp_start: float | None = None     # learned world: sampling start from a warped frame (None: the checkpoint's)
    warp_paste: bool | None = None      # learned world: keep the context's reprojected pixels (None: the checkpoint's)
    warp_space: str | None = None       # learned world: the warp start in "pixels" or "latents" (None: the checkpoint's)
    network_context: int | None = None  # learned world: context frames the DiT sees (0: all; None: the checkpoint's)
    warp_fill: str | None = None        # learned world: the warp start's unseen strip, one of camworld.model.warp.FILLS (None: the checkpoint's)
    learned_depth: bool | None = None   # learned world: reproject memory at its depth net's depth (None: the checkpoint's)

    FIELDS = ("retrieval", "context_size", "frame_size", "checkpoint", "device", "memory_capacity",
              "sample_steps", "guidance", "torch_threads", "dtype", "frames_per_pass",
              "warp_start", "warp_paste", "warp_space", "network_context", "warp_fill",
              "learned_depth")   # what an env passes on

    def build(self, num_worlds: int = 1, shared_memory: bool = False) -> Backend:
        """The backend of ``num_worlds`` worlds (``shared_memory``: cameras in one world, one bank)."""
        if self.kind == "sim":
            if self.dtype != "auto":
                raise ValueError(f"dtype={self.dtype!r} only applies to the learned world (ContextAsMemory-v0, "
                                 "backend='model'); CamWorld-v0 renders the ground-truth sim with numpy")
            for name in ("checkpoint", "torch_threads", "frames_per_pass", "warp_start", "warp_paste", "warp_space",
                         "network_context", "warp_fill", "learned_depth"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}= only applies to the learned world (ContextAsMemory-v0, "
                                     "backend='model'); CamWorld-v0 renders the ground-truth sim with numpy")
            return SimBackend(num_worlds, (64, 64) if self.frame_size is None else self.frame_size, self.retrieval,
                              self.context_size, self.memory_capacity, shared_memory=shared_memory)
        if self.kind == "model":
            be = ModelBackend(num_worlds, self.checkpoint, self.device, self.retrieval, self.context_size,
                              self.memory_capacity, self.sample_steps, self.guidance, shared_memory=shared_memory,
                              torch_threads=self.torch_threads, dtype=self.dtype, frames_per_pass=self.frames_per_pass,
                              warp_start=self.warp_start, warp_paste=self.warp_paste, warp_space=self.warp_space,
                              network_context=self.network_context, warp_fill=self.warp_fill,
                              learned_depth=self.learned_depth)
            if self.frame_size is not None and tuple(self.frame_size) != be.frame_size:
                H, W = be.frame_size
                raise ValueError(f"frame_size={tuple(self.frame_size)} but this checkpoint generates {H}x{W} frames; "
                                 f"omit frame_size (or pass frame_size={H}), or load a checkpoint trained at that size")
            return be
        raise ValueError(f"unknown backend {self.kind!r}; choose from {BACKENDS}")


def make_backend(kind: str, num_worlds: int = 1, *, shared_memory: bool = False, **spec):
    """Build a backend by name: ``WorldSpec(kind, **spec).build(num_worlds, shared_memory)``.
    ``frame_size`` None = the backend's native size (sim: 64x64); ``shared_memory=True``: B cameras
    in one world with one memory bank (the multi-agent env)."""
    return WorldSpec(kind, **spec).build(num_worlds, shared_memory)
