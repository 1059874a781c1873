"""The base Gymnasium env: a camera in a generated (or ground-truth) world, moved by actions.

``CamWorldEnv`` owns the spaces, ``reset``/``step``, episode starts, walls, infos and rendering;
tasks (``camworld.envs.tasks``) override hooks: ``_task_excursion``, ``_task_reward``,
``_task_info`` and, for Dict observations, ``_observation``.

The step protocol (public, for the vector and multi-agent envs that step many envs' worlds in one
batched backend call): ``begin_step(action) -> target poses (T, 3)`` (cameras (T, 3, 4) for 6-DoF
pose actions), then ``end_step(frames,
retrieved)`` with what the backend made for this env's slot; likewise ``begin_reset(seed, options)
-> scripted segments``, ``run_reset_segments(backend, envs, segments)`` (each env's
``absorb_reset``), ``end_reset()``. ``step`` and ``reset`` are exactly these for one env.

Letters: T frames per step, L frames of a scripted excursion, H/W frame size, k context size.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from camworld.envs.actions import (ACTION_TYPES, CLEARANCE_M, DISCRETE_NAMES, POSE6_FIELDS, ActionBounds,
                                   action_space, action_table_markdown, discrete_index, discrete_subset,
                                   end_extrinsics, end_pose, segment_extrinsics, segment_poses)
from camworld.envs.backends import BACKENDS, DEFAULT_RETRIEVAL, WorldSpec, backend_for
from camworld.geometry import CAMERA_HEIGHT, euler_to_extrinsics, extrinsics_to_planar, planar_to_extrinsics

RESET_OPTIONS = ("scene_seed", "style", "prompt", "pose", "image", "world")
NO_SCENE = -1              # info["scene_seed"] of episodes started from a user's image


class CamWorldEnv(gym.Env):
    """
    ## Description

    A camera in a world that a video model generates as it moves (the Context-as-Memory paper):
    every step the agent says where the camera goes, the world generates the frames seen along the
    way, conditioned on frames it retrieved from its memory of everything generated so far, and the
    agent observes the last one. ``ContextAsMemory-v0`` is the learned world (the shipped
    checkpoint by default); ``CamWorld-v0`` has the same interface but renders the frames with the
    ground-truth procedural sim (``camworld.sim``), a fast twin that never forgets.

    Episodes start from a real frame: a held-out sim scene rendered at a free pose, or the user's
    own image (``options["image"]``, learned world only: the open-domain start of the paper).

    This base env has no task: reward 0, no termination. Tasks are registered as their own ids.

    ## Action Space

    ``action_type="discrete"`` (default), ``Discrete(7)``; sizes per step at the default
    ``frames_per_step=4`` (they scale with it):

    | Num | Name | Action |
    |---|---|---|
    | 0 | noop | stay (the world still generates the segment) |
    | 1 | forward | move forward 1.00 m |
    | 2 | backward | move backward 1.00 m |
    | 3 | turn_left | turn left 12.0 degrees |
    | 4 | turn_right | turn right 12.0 degrees |
    | 5 | strafe_left | move left 1.00 m without turning |
    | 6 | strafe_right | move right 1.00 m without turning |

    ``action_type="continuous"``: ``Box(3,)`` float32 = (forward m, strafe-left m, yaw-left deg)
    per step, translation in the camera's frame at the start of the step. Bounds follow the paper's
    trajectories (6 m and 60 degrees per 77 frames at 30 fps; one generated frame is 4 sim frames):
    0.312 m and 3.12 degrees per generated frame, times ``frames_per_step`` (1.25 m and 12.5
    degrees at 4). Actions outside the box raise ``ValueError``; SB3 clips to the box for you.

    ``action_type="pose"``: ``Box(3,)`` float32 = an absolute target pose (x m, y m, yaw rad) for
    the end of the segment (the paper's "user provides the next camera pose"). A target farther than
    one step's bounds is approached by at most the bounds (``info["pose_clipped"]``).

    ``discrete_actions`` (a list of the names above, e.g. ``["noop", "turn_left", "turn_right"]``): a reduced
    action set, ``Discrete(len)``, numbered in the order given (``env.unwrapped.discrete_actions`` holds the
    names). A task that only asks the agent to turn and stop is one a random policy can then stumble on, which
    is what PPO needs to learn it. The scripted policies in ``camworld.agents`` follow the numbering.

    In every case the camera moves on a straight line and turns linearly over the ``T`` frames
    (``geometry.interpolate_poses``).

    6-DoF pose actions: on a learned world whose model was trained on 6-DoF cameras (its
    checkpoint's record says ``"cameras": "6dof"``; ``env.six_dof`` is True), ``action_type="pose"``
    is ``Box(6,)`` float32, an absolute target camera for the end of the segment:

    | Index | Meaning | Unit | Box |
    |---|---|---|---|
    | 0, 1, 2 | x, y, z: camera centre (z up; a planar camera is at z = 1.6) | m | +-1000 |
    | 3 | yaw: heading about +z (0 looks along +x, positive turns left) | rad | +-pi |
    | 4 | pitch: positive looks up | rad | +-pi/2 |
    | 5 | roll: about the optical axis, positive turns the image clockwise | rad | +-pi |

    (``geometry.euler_to_extrinsics``: yaw, then pitch, then roll.) One step moves the centre at most
    the continuous bounds' travel (1.25 m at ``frames_per_step=4``, a 3D distance) and turns the camera
    at most their turn (12.5 degrees: the angle of the rotation between the two cameras); a target
    farther than that is approached (``info["pose_clipped"]``). In between, centres are on a straight
    line and rotations are slerped. ``info["frame_extrinsics"]`` holds every frame's camera,
    ``info["poses"]`` their ground position and heading. Discrete and continuous actions stay planar
    on such a world, and a planar world (the sim twin, a model trained on the sim) refuses 6-DoF
    targets with the reason.

    ## Walls

    Movement is camera control. Episodes started in a sim scene (both ids) keep the scene's walls:
    a frame whose move would come closer than 0.3 m to a wall stops there; the camera keeps
    turning, and ``info["collided"]`` is True. Episodes started from an image have no known
    geometry: the camera is free.

    ## Observation Space

    ``Box(0, 255, (H, W, 3), uint8)``: the last generated frame of the segment (default 64x64).

    ## Info

    | key | value |
    |---|---|
    | frames | uint8 (T, H, W, 3): every frame of the segment (at reset: the start frame and any scripted excursion) |
    | poses | float64 (T, 3): their planar poses (6-DoF cameras: ground position and heading) |
    | pose | float64 (3,): the current pose (x, y, yaw) |
    | start_pose | float64 (3,): the pose of the start frame |
    | extrinsics | float64 (3, 4): camera-to-world [R\\|t] of the current camera (OpenCV axes) |
    | frame_extrinsics | float64 (T, 3, 4): camera-to-world [R\\|t] of every frame in ``frames`` |
    | retrieved | int64 (k,): memory indices used as context in the last step, -1-padded |
    | memory_size | int: frames in the world's memory |
    | scene_seed | int: the source scene, -1 for image starts |
    | collided | bool: a wall stopped the camera this step |
    | pose_clipped | bool: a "pose" action was farther than one step |
    | prompt | str or None (reset only): the caption the world is conditioned on |

    ## Rewards, Termination

    No reward and no termination here; truncation after ``max_episode_steps`` (registered: 200).

    ## Arguments

    ``backend``: "sim" (the twin), "model" (the learned world), a ``camworld.world.World`` you built
    or loaded (``camworld.world_io.load_world``; ``slot`` picks its world), or a backend shared
    with other envs. The world keywords below are one ``WorldSpec`` (``camworld.envs.backends``).
    ``action_type ("discrete", "continuous", "pose"), ``retrieval`` (strategy name, default
    "fov+nonadj"), ``context_size`` (k, default 8), ``frames_per_step`` (T, default 4),
    ``frame_size`` (int or (H, W); default the backend's: 64 for the sim, the checkpoint's for the
    learned world), ``checkpoint`` (path; None = the shipped one), ``device`` ("auto"),
    ``render_mode`` ("rgb_array": ``render()`` returns the last frame; "human": a pygame window),
    ``sample_steps``/``guidance`` (sampler overrides), ``memory_capacity``, ``torch_threads`` (learned
    world: torch threads of this process; None = the thread policy below), ``dtype`` (learned world: the
    DiT's sampling dtype; "auto" = bfloat16 on CUDA and, from 8 worlds per batch,
    on CPUs with AMX or AVX512-BF16, else "float32"),
    ``frames_per_pass`` (learned world: frames per sampling pass; None = the checkpoint's),
    ``warp_start`` (learned world: flow time each sample starts at from a context frame warped to the target
    camera, ``camworld.model.warp``; 1.0 = from pure noise; None = the checkpoint's), ``warp_paste`` (learned
    world: keep the context's own pixels reprojected wherever a context camera saw the target pixel, the
    network's elsewhere; False = the network's frame everywhere; None = the checkpoint's), ``warp_space``
    (learned world: the warp start reprojects the decoded frame and encodes it, "pixels", or the frame's
    cached latents, "latents"; None = the checkpoint's), ``network_context`` (learned world: context frames the
    DiT sees, the newest and those nearest the targets; 0 = all k; the paste uses all k; None = the checkpoint's),
    ``warp_fill`` (learned world: what the warp start shows where its source frame did not look, "border" (its
    border repeated) or "smooth" (filled from the seen pixels around); None = the checkpoint's), ``learned_depth``
    (learned world: reproject each memory frame at the depth its depth net predicts, ``camworld.model.depth``,
    instead of the assumed floor / 6 m plane; None = the checkpoint's), ``discrete_actions`` (a reduced discrete
    action set, above).

    ## Running envs in parallel

    On CPU the fast path is ONE process: ``gym.make_vec(id, num_envs=N)`` (the default vectorisation)
    steps all N worlds in one batched forward pass, with one model copy and every core working on one
    big batch. Worker processes (``vectorization_mode="async"``, SB3's ``SubprocVecEnv``,
    multiprocessing) each hold a model copy and run small batches, and they compete for the cores.
    So a learned world built in a worker process takes its fair share of torch threads
    (``camworld.threads``): cores // workers, 1 in a forked worker (torch's OpenMP pool deadlocks
    after fork otherwise) or where the workers cannot be counted. ``torch_threads=n`` (or the
    environment variable ``CAMWORLD_TORCH_THREADS``) overrides it; more threads than the share
    warns once, with the fix.

    ## Reset options

    ``scene_seed`` (int; default drawn from the held-out range >= ``camworld.sim.EVAL_SEED_OFFSET``
    by the reset seed), ``style`` (one of ``camworld.sim.STYLES``), ``prompt`` (str), ``pose``
    ((x, y, yaw); default a random free pose; with 6-DoF pose actions also (x, y, z, yaw, pitch, roll),
    a 6-DoF one from an ``image`` start only: the sim renders level cameras), ``image`` (uint8 (H, W, 3)
    RGB start frame; resized with a warning if its size differs).

    ## Registered ids

    ``ContextAsMemory-v0``, ``CamWorld-v0`` (see ``camworld.envs.registration.ENV_TABLE``).
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 8}

    def __init__(self, backend="sim", action_type: str = "discrete", retrieval: str = DEFAULT_RETRIEVAL,
                 context_size: int = 8, frames_per_step: int = 4, frame_size=None, checkpoint=None,
                 device="auto", render_mode: str | None = None, sample_steps: int | None = None,
                 guidance: float | None = None, memory_capacity: int = 100_000, slot: int = 0,
                 torch_threads: int | None = None, dtype: str = "auto", frames_per_pass: int | None = None,
                 warp_start: float | None = None, warp_paste: bool | None = None, warp_space: str | None = None,
                 network_context: int | None = None, warp_fill: str | None = None,
                 learned_depth: bool | None = None, discrete_actions=None):
        if action_type not in ACTION_TYPES:
            raise ValueError(f"action_type must be one of {ACTION_TYPES}, got {action_type!r}")
        if discrete_actions is not None and action_type != "discrete":
            raise ValueError(f"discrete_actions= picks a subset of the discrete actions; this env's action_type is "
                             f"{action_type!r}")
        self._action_map = None if discrete_actions is None else discrete_subset(discrete_actions)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if isinstance(frames_per_step, bool) or not isinstance(frames_per_step, (int, np.integer)) \
                or not 1 <= frames_per_step <= 64:
            raise ValueError(f"frames_per_step must be an int in [1, 64], got {frames_per_step!r}")
        size = _frame_size(frame_size)
        if hasattr(backend, "step_result") and hasattr(backend, "memory_of"):   # a World: adopt it (slot = its world)
            backend = backend_for(backend)
        if isinstance(backend, str):
            if backend not in BACKENDS:
                raise ValueError(f"backend must be one of {BACKENDS}, a World or a backend object, got {backend!r}")
            backend = WorldSpec(backend, retrieval, context_size, size, checkpoint, device, memory_capacity,
                                sample_steps, guidance, torch_threads, dtype, frames_per_pass, warp_start,
                                warp_paste, warp_space, network_context, warp_fill, learned_depth).build(1)
            slot = 0
        elif torch_threads is not None:
            raise ValueError("torch_threads= is set where the backend is built; this env shares a backend object "
                             "(pass torch_threads to the vector or multi-agent env instead)")
        elif size is not None and tuple(size) != tuple(backend.frame_size):
            raise ValueError(f"frame_size={size} does not match the shared backend's {backend.frame_size}")
        if not 0 <= int(slot) < backend.num_worlds:
            raise ValueError(f"slot {slot} out of range for a backend of {backend.num_worlds} worlds")
        self.backend, self.slot = backend, int(slot)
        world = getattr(backend, "world", None)
        self.torch_threads = None if world is None else world.torch_threads   # threads in effect (learned world)
        self.action_type, self.render_mode = action_type, render_mode
        self.frames_per_step = int(frames_per_step)
        self.context_size = backend.context_size
        self.cameras = getattr(backend, "cameras", "planar")       # what the world makes frames for
        self.six_dof = action_type == "pose" and self.cameras == "6dof"   # pose actions are 6-DoF targets
        self.frame_size = tuple(backend.frame_size)
        self.bounds = ActionBounds(self.frames_per_step, backend.frame_stride)
        self.metadata = {**type(self).metadata, "render_fps": int(round(self.bounds.fps))}
        H, W = self.frame_size
        self.frame_space = spaces.Box(0, 255, (H, W, 3), np.uint8)
        self.observation_space = self._observation_space()
        # the action names, index by index, for a discrete env
        self.discrete_actions = None if action_type != "discrete" else DISCRETE_NAMES if self._action_map is None \
            else tuple(DISCRETE_NAMES[i] for i in self._action_map)
        self.action_space = action_space(action_type, self.bounds, self.six_dof, self.discrete_actions)
        self._viewer = None
        self._scene_cache = {}
        self._started = False
        self._pending = None
        self._retrieved = np.zeros(0, np.int64)

    # ---------------------------------------------------------------- hooks for tasks

    def _observation_space(self) -> spaces.Space:
        return self.frame_space

    def _observation(self, frame: np.ndarray):
        """The observation from the newest frame (a fresh copy)."""
        return frame.copy()

    def _task_excursion(self) -> np.ndarray | None:
        """Poses (L, 3) of a forced scripted excursion after the start frame, or None."""
        return None

    def _task_start(self, frames: np.ndarray, poses: np.ndarray):
        """Called once the start (and excursion) frames exist: frames (L + 1, H, W, 3), poses (L + 1, 3)."""

    def _task_reward(self, frames: np.ndarray, poses: np.ndarray) -> tuple:
        """-> (reward float, terminated bool) after a step whose frames/poses are (T, ...)."""
        return 0.0, False

    def _task_info(self) -> dict:
        """Extra info entries (fresh objects every call)."""
        return {}

    # ---------------------------------------------------------------- reset

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        run_reset_segments(self.backend, {self.slot: self}, {self.slot: self.begin_reset(seed, options)})
        return self.end_reset()

    def begin_reset(self, seed, options) -> list:
        """Start an episode (scene, start frame, backend reset). -> scripted segments [(T, 3), ...] to generate."""
        super().reset(seed=seed)
        opts = self._check_options(options)
        rng = self.np_random
        default_seed = self._default_scene_seed(rng)
        world_seed = int(rng.integers(0, 2**31 - 1))
        H, W = self.frame_size
        if "world" in opts:
            from camworld.world_io import camera_state, load_world_into

            world = self.backend.world
            saved = load_world_into(world, self.slot, opts["world"]).get("env", {})
            frame, pose = camera_state(world, self.slot)
            ext = world.memory_of(self.slot).extrinsics([world.camera_state(self.slot)["last"]])[0]
            scene_seed = int(saved.get("scene_seed", NO_SCENE))
            scene = None if scene_seed == NO_SCENE else self._scene(scene_seed, saved.get("style"))
            prompt = world.prompts[self.slot]
            retrieved = world.last_retrieved[self.slot]
        elif "image" in opts:
            scene, scene_seed = None, NO_SCENE
            frame = _fit_image(opts["image"], (H, W))
            pose, ext = _check_pose(opts.get("pose", (0.0, 0.0, 0.0)), self.six_dof)
            prompt = opts.get("prompt")
        else:
            from camworld.sim import render, scene_caption

            scene_seed = int(opts.get("scene_seed", default_seed))
            scene = self._scene(scene_seed, opts.get("style"))
            if "pose" in opts:
                pose, ext = _check_pose(opts["pose"], self.six_dof)
                if ext is not None:
                    raise ValueError(f"options['pose'] = {list(opts['pose'])} is a 6-DoF camera, but an episode in a "
                                     "sim scene starts from the sim's render, and the sim renders level cameras at "
                                     f"{CAMERA_HEIGHT} m: start a 6-DoF camera from your own image "
                                     "(options['image']), or give (x, y, yaw)")
                if not bool(np.all(scene.is_free(pose[:2], clearance=CLEARANCE_M))):
                    raise ValueError(f"start pose (x, y) = ({pose[0]:.2f}, {pose[1]:.2f}) is inside a wall or closer than "
                                     f"{CLEARANCE_M} m to one in scene {scene_seed}; pick a free point "
                                     "(scene.is_free) or omit options['pose'] for a random free pose")
            else:
                pose, ext = np.asarray(scene.sample_free_pose(rng), np.float64), None
            frame = render(scene, pose[None], H, W)[0][0]
            prompt = opts["prompt"] if "prompt" in opts else scene_caption(scene, rng)
        self.scene, self.scene_seed, self.prompt = scene, scene_seed, prompt
        if "world" not in opts:  # a loaded world keeps its memory and generators
            self.backend.reset(self.slot, frame, pose if ext is None else ext, prompt=prompt, seed=world_seed,
                               scene=scene)
        self.extrinsics = planar_to_extrinsics(pose) if ext is None else ext.copy()   # (3, 4) the current camera
        self.pose, self.frame, self.steps = pose.copy(), frame.copy(), 0
        self.start_pose, self.start_frame = pose.copy(), frame.copy()
        self._started, self._pending = True, None
        self._collided = self._clipped = False
        self._reset_frames, self._reset_poses, self._reset_ext = [frame[None]], [pose[None]], [self.extrinsics[None]]
        self._retrieved = np.array(retrieved if "world" in opts else (), np.int64)
        exc = self._task_excursion()
        if exc is None or len(exc) == 0:
            return []
        exc = np.asarray(exc, np.float64).reshape(-1, 3)
        T = self.frames_per_step
        pad = (-len(exc)) % T                                       # repeat the last pose to fill the last segment
        exc = np.concatenate([exc, np.repeat(exc[-1:], pad, 0)]) if pad else exc
        return [exc[j:j + T] for j in range(0, len(exc), T)]

    def absorb_reset(self, frames: np.ndarray, poses: np.ndarray, retrieved: np.ndarray):
        """Take the frames (T, H, W, 3) of one scripted excursion segment and the memory indices used."""
        self._retrieved = np.asarray(retrieved, np.int64).copy()
        poses = np.asarray(poses, np.float64)
        self._reset_frames.append(np.asarray(frames))
        self._reset_poses.append(poses)
        self._reset_ext.append(planar_to_extrinsics(poses))
        self.frame, self.pose = np.asarray(frames[-1]).copy(), poses[-1].copy()
        self.extrinsics = self._reset_ext[-1][-1].copy()

    def end_reset(self):
        frames = np.concatenate(self._reset_frames)
        poses = np.concatenate(self._reset_poses)
        ext = np.concatenate(self._reset_ext)
        self._reset_frames = self._reset_poses = self._reset_ext = None
        self._task_start(frames, poses)
        info = self._info(frames, poses, ext)
        info["prompt"] = self.prompt
        if self.render_mode == "human":   # the start and any excursion, in at most ~2 s
            self._show(frames, fps=max(self.bounds.fps, len(frames) / 2.0))
        return self._observation(self.frame), info

    # ---------------------------------------------------------------- step

    def step(self, action):
        poses = self.begin_step(action)
        res = self.backend.step_result(_one_slot(poses, self.slot, self.backend.num_worlds),
                                       active=_one_slot(True, self.slot, self.backend.num_worlds))
        return self.end_step(res.frames[self.slot], res.retrieved[self.slot])

    def begin_step(self, action) -> np.ndarray:
        """Validate the action -> target poses (T, 3) of the segment, or cameras (T, 3, 4) for a 6-DoF pose
        action (walls applied)."""
        if not self._started:
            raise RuntimeError("call env.reset() before env.step(): the world has no start frame yet")
        if self.six_dof:
            end, self._clipped = end_extrinsics(action, self.extrinsics, self.bounds)
            self._end_target = end                            # the unobstructed end camera (tasks read it)
            cams, self._collided = segment_extrinsics(self.extrinsics, end, self.frames_per_step, self.scene,
                                                      CLEARANCE_M)
            self._pending = cams
            return cams
        if self.action_type == "pose" and np.shape(action) == (6,):
            raise ValueError(f"a 6-DoF pose action {POSE6_FIELDS} needs a world model trained on 6-DoF cameras (its "
                             "checkpoint's record says \"cameras\": \"6dof\"; camworld train --data on videos with "
                             f"6-DoF cameras); this world is {self.cameras} ({type(self.backend).__name__}): give "
                             "(x m, y m, yaw rad)")
        if self._action_map is not None:                      # a reduced action set: its index -> the full one
            action = self._action_map[discrete_index(action, self.discrete_actions)]
        end, self._clipped = end_pose(action, self.action_type, self.pose, self.bounds)
        self._end_target = end                                # the unobstructed end pose (tasks read it)
        poses, self._collided = segment_poses(self.pose, end, self.frames_per_step, self.scene, CLEARANCE_M)
        self._pending = poses
        return poses

    def end_step(self, frames: np.ndarray, retrieved: np.ndarray):
        """Finish the step ``begin_step`` began: frames (T, H, W, 3) made at its poses, with the memory
        indices the world used as context. -> (obs, reward, terminated, truncated, info)."""
        poses, self._pending = self._pending, None
        if poses is None:
            raise RuntimeError("end_step without begin_step")
        if poses.ndim == 3:                  # 6-DoF cameras (T, 3, 4): the tasks see their ground pose and heading
            ext, poses = poses, extrinsics_to_planar(poses)
        else:
            ext = planar_to_extrinsics(poses)
        self._retrieved = np.asarray(retrieved, np.int64).copy()
        frames = np.array(frames, dtype=np.uint8, copy=True)               # (T, H, W, 3), never a view
        self.frame, self.pose, self.steps = frames[-1].copy(), poses[-1].copy(), self.steps + 1
        self.extrinsics = ext[-1].copy()
        reward, terminated = self._task_reward(frames, poses)
        info = self._info(frames, poses, ext)
        if self.render_mode == "human":
            self._show(frames)
        return self._observation(self.frame), float(reward), bool(terminated), False, info

    @property
    def last_retrieved(self) -> np.ndarray:
        """int64: the memory indices this env's world used as context in its last step (unpadded)."""
        return self._retrieved.copy()

    # ---------------------------------------------------------------- info, render, close

    def _info(self, frames: np.ndarray, poses: np.ndarray, ext: np.ndarray) -> dict:
        k = self.context_size
        used = self._retrieved[-k:]
        retrieved = np.full(k, -1, np.int64)
        retrieved[: len(used)] = used
        info = {
            "frames": np.array(frames, np.uint8, copy=True),
            "poses": np.array(poses, np.float64, copy=True),
            "pose": self.pose.copy(),
            "start_pose": self.start_pose.copy(),
            "extrinsics": self.extrinsics.copy(),
            "frame_extrinsics": np.array(ext, np.float64, copy=True),
            "retrieved": retrieved,
            "memory_size": int(len(self.backend.memories[self.slot])),
            "scene_seed": int(self.scene_seed),
            "collided": bool(self._collided),
            "pose_clipped": bool(self._clipped),
        }
        info.update(self._task_info())
        return info

    def render(self):
        if self.render_mode == "rgb_array":
            if not self._started:
                return np.zeros(self.frame_space.shape, np.uint8)
            return self.frame.copy()
        if self.render_mode == "human":
            if self._started:
                self._show(self.frame)
            return None
        return None

    def _show(self, frames, fps=None):
        if self._viewer is None:
            from camworld.envs.viewer import Viewer

            self._viewer = Viewer(self.frame_size, fps=self.bounds.fps, title=type(self).__name__)
        self._viewer.show(frames, fps)

    def close(self):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        self._scene_cache = {}

    # ---------------------------------------------------------------- helpers

    def _default_scene_seed(self, rng) -> int:
        from camworld.sim import EVAL_SEED_OFFSET

        return int(EVAL_SEED_OFFSET + rng.integers(0, EVAL_SEED_OFFSET))

    def _scene(self, seed: int, style):
        key = (seed, style)
        if key not in self._scene_cache:
            from camworld.sim import make_scene

            self._scene_cache = {key: make_scene(seed, style=style)}   # keep one: resets often reuse a seed
        return self._scene_cache[key]

    def save_world(self, path, extra: dict | None = None):
        """Save this env's world (memory, clocks, prompt, RNG) to the folder ``path``;
        ``reset(options={"world": path})`` continues it where the camera stands. Learned world only."""
        if not self._started:
            raise RuntimeError("call reset() before save_world(): there is no world yet")
        world = getattr(self.backend, "world", None)
        if world is None:
            raise ValueError("save_world needs the learned world (ContextAsMemory-*); the sim twin's world is its "
                             "scene: reset(options={'scene_seed': ...}) rebuilds it")
        from camworld.world_io import save_world

        env = {"scene_seed": int(self.scene_seed), "style": None if self.scene is None else self.scene.style,
               "pose": self.pose.tolist(), "env": type(self).__name__}
        return save_world(world, path, extra={**(extra or {}), "env": env}, worlds=[self.slot])

    def _check_options(self, options) -> dict:
        if options is None:
            return {}
        if not isinstance(options, dict):
            raise TypeError(f"options must be a dict (keys {RESET_OPTIONS}) or None, got {type(options).__name__}")
        bad = sorted(set(options) - set(RESET_OPTIONS))
        if bad:
            raise ValueError(f"unknown reset option(s) {bad}; valid options are {list(RESET_OPTIONS)}")
        opts = {k: v for k, v in options.items() if v is not None}
        if "image" in opts:
            if self.backend.needs_scene:
                raise ValueError("options['image'] needs the learned world: the sim twin (CamWorld-v0) can only "
                                 "render its own procedural scenes; use gym.make('ContextAsMemory-v0')")
            both = sorted({"scene_seed", "style"} & set(opts))
            if both:
                raise ValueError(f"options {both} choose a sim scene, options['image'] starts from your own image: "
                                 "pass one or the other")
        if "world" in opts:
            if self.backend.needs_scene:
                raise ValueError("options['world'] continues a saved learned world; the sim twin (CamWorld-*) needs "
                                 "none: its world is options['scene_seed']")
            clash = sorted({"scene_seed", "style", "image", "pose", "prompt"} & set(opts))
            if clash:
                raise ValueError(f"options['world'] restores the scene, pose and prompt it was saved with; drop {clash}")
        if "scene_seed" in opts:
            s = opts["scene_seed"]
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
                raise ValueError(f"options['scene_seed'] must be an int >= 0, got {s!r}")
        if "style" in opts:
            from camworld.sim import STYLES

            if opts["style"] not in STYLES:
                raise ValueError(f"options['style'] must be one of {list(STYLES)}, got {opts['style']!r}")
        if "prompt" in opts and not isinstance(opts["prompt"], str):
            raise TypeError(f"options['prompt'] must be a str, got {type(opts['prompt']).__name__}")
        return opts

    @classmethod
    def action_table(cls, frames_per_step: int = 4, frame_stride: int = 4) -> str:
        """The discrete action table (Markdown) for given settings."""
        return action_table_markdown(ActionBounds(frames_per_step, frame_stride))


def run_reset_segments(backend, envs: dict, segments: dict):
    """Generate the scripted reset segments of several envs sharing ``backend``, batched: round r steps
    every env (by slot) that still has an r-th segment, and each env absorbs its frames.

    envs: slot -> env; segments: slot -> [poses (T, 3), ...] (what ``begin_reset`` returned)."""
    B = backend.num_worlds
    for r in range(max((len(s) for s in segments.values()), default=0)):
        live = [i for i in segments if r < len(segments[i])]
        T = len(segments[live[0]][r])
        targets = np.zeros((B, T, 3))
        active = np.zeros(B, bool)
        for i in live:
            targets[i], active[i] = segments[i][r], True
        res = backend.step_result(targets, active=active)
        for i in live:
            envs[i].absorb_reset(res.frames[i], segments[i][r], res.retrieved[i])


def _one_slot(value, slot: int, n: int) -> np.ndarray:
    """An (n, ...) array that is ``value`` at ``slot`` and zeros elsewhere (one env's row of a batch)."""
    value = np.asarray(value)
    out = np.zeros((n,) + value.shape, value.dtype)
    out[slot] = value
    return out


def _frame_size(frame_size):
    if frame_size is None:
        return None
    if isinstance(frame_size, (int, np.integer)) and not isinstance(frame_size, bool):
        frame_size = (int(frame_size), int(frame_size))
    try:
        H, W = (int(v) for v in frame_size)
    except (TypeError, ValueError):
        raise ValueError(f"frame_size must be an int or (H, W), got {frame_size!r}") from None
    if not (8 <= H <= 1024 and 8 <= W <= 1024):
        raise ValueError(f"frame_size must be between 8 and 1024 pixels per side, got {(H, W)}")
    return (H, W)


def _check_pose(pose, six_dof: bool = False) -> tuple:
    """options['pose'] -> (planar pose (3,), its camera (3, 4) when 6-DoF, else None). ``six_dof``: the env
    takes 6-DoF pose actions, so a start may also be (x, y, z, yaw, pitch, roll)."""
    what = "(x m, y m, yaw rad)" + (" or (x m, y m, z m, yaw rad, pitch rad, roll rad)" if six_dof else "")
    try:
        p = np.asarray(pose, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"options['pose'] must be {what}, got {pose!r}") from None
    if p.shape not in ((3,), (6,) if six_dof else (3,)) or not np.all(np.isfinite(p)):
        raise ValueError(f"options['pose'] must be {what} as finite numbers, got {pose!r}"
                         + ("" if six_dof or p.shape != (6,) else "; a 6-DoF start needs action_type='pose' on a "
                            "world model trained on 6-DoF cameras"))
    if p.shape == (3,):
        return p, None
    ext = euler_to_extrinsics(*p)
    if p[2] == CAMERA_HEIGHT and p[4] == 0 and p[5] == 0:       # level at eye height: a planar pose
        return p[[0, 1, 3]].copy(), None
    return extrinsics_to_planar(ext), ext


def _fit_image(image, size) -> np.ndarray:
    """Validate a user's start frame; resize (with a warning) to the world's frame size."""
    img = np.asarray(image)
    H, W = size
    if img.ndim != 3 or img.shape[2] != 3:
        hint = " (drop the alpha channel: image[..., :3])" if img.ndim == 3 and img.shape[2] == 4 else ""
        raise ValueError(f"options['image'] must be an RGB image uint8 (H, W, 3), got shape {img.shape}{hint}")
    if img.dtype != np.uint8:
        hint = (" (floats in [0, 1]: (image * 255).round().astype(np.uint8))"
                if np.issubdtype(img.dtype, np.floating) else " (convert with .astype(np.uint8))")
        raise ValueError(f"options['image'] must be uint8 in [0, 255], got {img.dtype}{hint}")
    if img.shape[:2] != (H, W):
        from PIL import Image

        warnings.warn(f"options['image'] is {img.shape[1]}x{img.shape[0]} (WxH); resized to the world's "
                      f"{W}x{H} frames (aspect ratio not kept; crop it first to keep it)", stacklevel=4)
        img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((W, H), Image.LANCZOS))
    return np.ascontiguousarray(img, dtype=np.uint8).copy()
