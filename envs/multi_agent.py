"""Many agents, one remembered world: a PettingZoo ``ParallelEnv`` of cameras sharing one memory.

    from camworld.envs.multi_agent import parallel_env
    env = parallel_env(n_agents=3, task="coverage", backend="model")   # the learned world
    obs, infos = env.reset(seed=0)
    obs, rewards, terms, truncs, infos = env.step({a: env.action_space(a).sample() for a in env.agents})

Every agent is a camera in ONE world with ONE memory bank (``World(shared_memory=True)``): what
camera A generated, camera B retrieves when it looks at the same place, so all agents see one
consistent world. All cameras are generated in one batched forward pass per step. Each agent is a
single-agent task env (``camworld.envs.tasks``) driving its own camera (its slot of the shared
backend), so actions, walls, rewards and infos are exactly those of the Gymnasium envs.

Letters: N agents, T frames per step, H/W frame size, k context size.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from camworld.envs.backends import BACKENDS, DEFAULT_RETRIEVAL, WorldSpec
from camworld.envs.registration import task_class
from camworld.envs.tasks import TASKS, CoverageGrid
from camworld.envs.world_env import _frame_size, run_reset_segments
from camworld.geometry import wrap_angle

TEAM_TASK = "coverage"
AGENT_TASKS = tuple(t for t in TASKS if t is not None) + (TEAM_TASK,)    # plus None: no task
RESET_OPTIONS = ("scene_seed", "style", "prompt", "image", "poses")
AGENT_PREFIX = "camera_"
MAX_AGENTS = 64
STARTS = ("together", "random")     # one free spot, yaws spread evenly / each camera its own free pose


class MultiAgentCamWorld(ParallelEnv):
    """
    ## Description

    ``n_agents`` cameras move in one generated world (``backend="model"``, the learned world) or in
    its ground-truth twin (``backend="sim"``). They share one memory bank: every frame is tagged with
    the camera that made it, and retrieval for a camera searches the frames of all cameras, with
    its own newest frame always in its context. So when camera B looks where camera A looked, B's
    frames are conditioned on A's (``info["retrieved_sources"]`` shows whose frames were used).
    An episode starts in one held-out sim scene (or from the user's image, learned world only)
    and every camera starts from a real frame: with ``start="together"`` (default) all at one free
    spot, looking in directions spread evenly around (camera i at yaw + 2 pi i / N); with
    ``start="random"`` each at its own free pose; ``options["poses"]`` sets them.
    Cameras are ghosts to each other (walls stop them, other cameras do not).

    ## Agents

    ``camera_0`` ... ``camera_{N-1}``. An agent that terminates leaves ``env.agents`` (its frames
    stay in the shared memory); all agents are truncated after ``max_cycles`` steps.

    ## Action Space (per agent)

    As ``CamWorldEnv``: ``Discrete(7)`` (noop, forward, backward, turn left, turn right, strafe
    left, strafe right; 1 m and 12 degrees per step at ``frames_per_step=4``), ``action_type=
    "continuous"`` ``Box(3,)`` or ``"pose"``. ``step`` takes a dict with one action for every agent
    in ``env.agents``; anything else raises ``ValueError``.

    ## Observation Space (per agent)

    The agent's task's: ``Box(0, 255, (H, W, 3), uint8)`` (the last frame of its segment), or
    ``Dict(frame, goal)`` for "goal-view".

    ## Tasks and rewards

    ``task``: one name for all agents, or one per agent:

    | task | reward |
    |---|---|
    | "coverage" | shared: the floor area (m^2) first seen by the TEAM during the step (every agent gets it) |
    | "explore" | the floor area first seen by this agent (as ``CamWorld-Explore-v0``) |
    | "return" | progress back to its own start pose, +10 on arrival, then it terminates |
    | "goal-view" | progress to its goal view, +10 on arrival, then it terminates |
    | None | 0 |

    The team's floor grid (0.5 m cells, the camera's horizontal FOV, 6 m rays stopped by walls) is
    updated by every agent's poses whatever its task; start frames are free.

    ## Info (per agent)

    The task env's info (``frames``, ``poses``, ``pose``, ``retrieved``, ``memory_size`` = frames in
    the shared bank, ...), plus ``retrieved_sources`` (int64 (k,): the camera that made each
    retrieved frame, -1 padding), ``team_seen_area_m2``, ``team_new_area_m2`` and
    ``own_new_area_m2`` (the team-new area this agent's views touched).

    ## Reset options

    ``scene_seed`` (int), ``style``, ``prompt`` (str; one caption for the whole world), ``image``
    (uint8 (H, W, 3); learned world only: every camera starts from it), ``poses`` (a dict
    agent -> (x, y, yaw), or an (N, 3) array). Unknown keys are ignored with a warning
    (PettingZoo's API test passes one).

    ## Arguments

    ``n_agents`` (2), ``task`` ("coverage"), ``backend`` ("sim" or "model"), ``max_cycles`` (200),
    ``start`` ("together" or "random"),
    ``render_mode`` ("human" or "rgb_array": the agents' frames side by side), and the
    ``CamWorldEnv`` arguments: ``action_type``, ``frames_per_step``, ``frame_size``, ``retrieval``,
    ``context_size``, ``checkpoint``, ``device``, ``sample_steps``, ``guidance``,
    ``memory_capacity``, ``torch_threads``, ``dtype``, ``frames_per_pass``, ``warp_start``, ``warp_paste``, ``warp_space``, ``network_context``, ``warp_fill``, ``learned_depth``; ``cell``/``view_range`` of the coverage grid; other keyword
    arguments go to the agents whose task takes them (e.g. ``excursion="rotate"`` to the "return" agents).
    """

    metadata = {"name": "camworld_multi_agent_v0", "render_modes": ["human", "rgb_array"], "render_fps": 8,
                "is_parallelizable": True}

    def __init__(self, n_agents: int = 2, task="coverage", backend="sim", max_cycles: int = 200,
                 render_mode: str | None = None, *, action_type: str = "discrete", frames_per_step: int = 4,
                 frame_size=None, retrieval: str = DEFAULT_RETRIEVAL, context_size: int = 8, checkpoint=None,
                 device="auto", sample_steps: int | None = None, guidance: float | None = None,
                 memory_capacity: int = 100_000, start: str = "together", cell: float = 0.5,
                 view_range: float = 6.0, torch_threads: int | None = None, dtype: str = "auto",
                 frames_per_pass: int | None = None, warp_start: float | None = None,
                 warp_paste: bool | None = None, warp_space: str | None = None,
                 network_context: int | None = None, warp_fill: str | None = None,
                 learned_depth: bool | None = None, **task_kwargs):
        if isinstance(n_agents, bool) or not isinstance(n_agents, (int, np.integer)) \
                or not 1 <= n_agents <= MAX_AGENTS:
            raise ValueError(f"n_agents must be an int in [1, {MAX_AGENTS}], got {n_agents!r}")
        N = int(n_agents)
        tasks = _parse_tasks(task, N)
        classes = [task_class(None if t == TEAM_TASK else t) for t in tasks]
        unused = [k for k in task_kwargs if not any(_accepts(c, k) for c in classes)]
        if unused:
            raise ValueError(f"no agent's task accepts the keyword argument(s) {unused} (tasks: {tasks})")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)) or max_cycles < 1:
            raise ValueError(f"max_cycles must be an int >= 1, got {max_cycles!r}")
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        if not cell > 0 or not view_range > 0:
            raise ValueError(f"cell and view_range must be > 0 metres, got cell={cell}, view_range={view_range}")
        if isinstance(backend, str):
            if backend not in BACKENDS:
                raise ValueError(f"backend must be one of {BACKENDS} or a shared backend object, got {backend!r}")
            backend = WorldSpec(backend, retrieval, context_size, _frame_size(frame_size), checkpoint, device,
                                memory_capacity, sample_steps, guidance, torch_threads, dtype,
                                frames_per_pass, warp_start, warp_paste, warp_space,
                                network_context, warp_fill, learned_depth).build(N, shared_memory=True)
        elif not getattr(backend, "shared_memory", False) or backend.num_worlds != N:
            raise ValueError(f"a backend object must be a shared-memory backend of {N} cameras "
                             "(make_backend(..., shared_memory=True)), got "
                             f"{type(backend).__name__} with num_worlds={getattr(backend, 'num_worlds', None)}")
        self.backend, self.tasks = backend, tasks
        self.max_cycles, self.render_mode, self.start = int(max_cycles), render_mode, start
        self.cell, self.view_range = float(cell), float(view_range)
        self.envs = []
        for i, cls in enumerate(classes):
            kw = {k: v for k, v in task_kwargs.items() if _accepts(cls, k)}   # e.g. excursion= only to "return"
            if tasks[i] == "explore":
                kw.update(cell=cell, view_range=view_range)
            self.envs.append(cls(backend=backend, slot=i, action_type=action_type, frames_per_step=frames_per_step,
                                 **kw))
        self.possible_agents = [f"{AGENT_PREFIX}{i}" for i in range(N)]
        self.agents: list = []
        self.observation_spaces = {a: e.observation_space for a, e in zip(self.possible_agents, self.envs)}
        self.action_spaces = {a: e.action_space for a, e in zip(self.possible_agents, self.envs)}
        self.frame_size = tuple(backend.frame_size)
        H, W = self.frame_size
        self.state_space = spaces.Box(0, 255, (H, N * W + N - 1, 3), np.uint8)      # ``state()``: all views
        self.frames_per_step = self.envs[0].frames_per_step
        self.metadata = {**type(self).metadata, "render_fps": self.envs[0].metadata["render_fps"]}
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.np_random = None
        self.cycles = 0
        self._team: CoverageGrid | None = None
        self._viewer = None

    # ---------------------------------------------------------------- spaces

    def observation_space(self, agent):
        return self.observation_spaces[self._agent(agent)]

    def action_space(self, agent):
        return self.action_spaces[self._agent(agent)]

    def _agent(self, agent) -> str:
        if agent not in self._index:
            raise ValueError(f"unknown agent {agent!r}; the agents are {self.possible_agents}")
        return agent

    # ---------------------------------------------------------------- reset

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None or self.np_random is None:
            self.np_random, _ = seeding.np_random(seed)
        rng, N = self.np_random, len(self.possible_agents)
        per_agent = self._agent_options(options, rng)
        seeds = rng.integers(0, 2**31 - 1, size=N)
        segs = {i: env.begin_reset(int(s), o) for i, (env, s, o) in enumerate(zip(self.envs, seeds, per_agent))}
        run_reset_segments(self.backend, dict(enumerate(self.envs)), segs)    # camera 0 first; batched
        self.agents, self.cycles = list(self.possible_agents), 0
        self._team = CoverageGrid(self.cell, self.view_range, scene=self.envs[0].scene)
        obs, infos = {}, {}
        for a, env in zip(self.possible_agents, self.envs):
            obs[a], infos[a] = env.end_reset()
            self._team.update(infos[a]["poses"])
        for a in self.possible_agents:
            infos[a].update(self._shared_info(a, 0.0, 0.0))
        if self.render_mode == "human":
            self._show(self._tiled_frames())
        return obs, infos

    def _agent_options(self, options, rng) -> list:
        """Reset options -> one option dict per agent (one scene and one prompt for the whole world)."""
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise TypeError(f"options must be a dict (keys {RESET_OPTIONS}) or None, got {type(options).__name__}")
        unknown = sorted(set(options) - set(RESET_OPTIONS), key=str)
        if unknown:
            warnings.warn(f"ignoring unknown reset option(s) {unknown}; valid options are {list(RESET_OPTIONS)}",
                          stacklevel=3)
        opts = {k: v for k, v in options.items() if k in RESET_OPTIONS and v is not None}
        poses = self._start_poses(opts.pop("poses", None))
        if "image" in opts and any(p is not None for p in poses):
            if any(p is None or not np.allclose(p, poses[0]) for p in poses):
                raise ValueError("with options['image'] every camera starts from that one picture, so at one pose: "
                                 "give them all the same pose in options['poses'] (or omit it for (0, 0, 0))")
        if "image" not in opts:
            from camworld.sim import EVAL_SEED_OFFSET, make_scene, scene_caption

            s = opts.setdefault("scene_seed", int(EVAL_SEED_OFFSET + rng.integers(0, EVAL_SEED_OFFSET)))
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
                raise ValueError(f"options['scene_seed'] must be an int >= 0, got {s!r}")
            scene = make_scene(int(s), opts.get("style"))
            if "prompt" not in opts:
                opts["prompt"] = scene_caption(scene, rng)
            if self.start == "together" and all(p is None for p in poses):   # one spot, looking all around
                p0 = scene.sample_free_pose(rng)
                yaws = wrap_angle(p0[2] + 2 * np.pi * np.arange(len(poses)) / len(poses))
                poses = [np.array([p0[0], p0[1], y]) for y in yaws]
        out = []
        for p in poses:
            o = dict(opts)
            if p is not None:
                o["pose"] = p
            out.append(o)
        return out

    def _start_poses(self, poses) -> list:
        N = len(self.possible_agents)
        if poses is None:
            return [None] * N
        if isinstance(poses, dict):
            for a in poses:
                self._agent(a)
            return [poses.get(a) for a in self.possible_agents]
        p = np.asarray(poses, dtype=np.float64)
        if p.shape != (N, 3):
            raise ValueError(f"options['poses'] must be a dict agent -> (x, y, yaw) or an array ({N}, 3), got shape "
                             f"{p.shape}")
        return list(p)

    # ---------------------------------------------------------------- step

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError("no live agents: call reset() first (or again, after the episode ended)")
        self._check_actions(actions)
        N, live = len(self.possible_agents), [self._index[a] for a in self.agents]
        targets, active = None, np.zeros(N, bool)
        for i in live:
            a = self.possible_agents[i]
            try:
                t = np.asarray(self.envs[i].begin_step(actions[a]), np.float64)   # (T, 3) planar or (T, 3, 4) 6-DoF
            except ValueError as e:
                raise ValueError(f"action for {a}: {e}") from None
            if targets is None:
                targets = np.zeros((N,) + t.shape)
            targets[i] = t
            active[i] = True
        res = self.backend.step_result(targets, active=active)                 # (N, T, H, W, 3), one pass
        frames = res.frames
        self.cycles += 1
        obs, rewards, terms, truncs, infos = {}, {}, {}, {}, {}
        for i in live:
            a = self.possible_agents[i]
            obs[a], rewards[a], terms[a], _, infos[a] = self.envs[i].end_step(frames[i], res.retrieved[i])
        seen = {a: self._cells(infos[a]["poses"]) for a in obs}
        new = {a: seen[a] - self._team.seen for a in obs}
        before = len(self._team.seen)
        for a in obs:
            self._team.seen |= seen[a]
        team_new = (len(self._team.seen) - before) * self.cell ** 2
        for a in obs:
            if self.tasks[self._index[a]] == TEAM_TASK:
                rewards[a] = float(team_new)
            truncs[a] = self.cycles >= self.max_cycles
            infos[a].update(self._shared_info(a, team_new, len(new[a]) * self.cell ** 2))
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        if self.render_mode == "human":
            self._show(self._tiled_frames(frames, active))
        return obs, rewards, terms, truncs, infos

    def _check_actions(self, actions):
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict agent -> action for the agents {self.agents}, got "
                             f"{type(actions).__name__}")
        unknown = [a for a in actions if a not in self._index]
        if unknown:
            raise ValueError(f"actions for unknown agent(s) {unknown}; the agents are {self.possible_agents}")
        done = [a for a in actions if a not in self.agents]
        if done:
            raise ValueError(f"actions for agent(s) {done} that are done this episode; send actions only for "
                             f"env.agents = {self.agents}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"missing actions for live agent(s) {missing}; every agent in env.agents acts each step "
                             "(action 0 is noop for discrete actions)")

    def _cells(self, poses) -> set:
        """The floor cells a segment's poses (T, 3) see, on the team grid (walls stop the rays)."""
        grid = CoverageGrid(self.cell, self.view_range, scene=self._team.scene)
        grid.update(poses)
        return grid.seen

    def _shared_info(self, agent, team_new: float, own_new: float) -> dict:
        env = self.envs[self._index[agent]]
        bank = self.backend.memories[env.slot]
        used = env.last_retrieved[-env.context_size:]
        src = np.full(env.context_size, -1, np.int64)
        src[: len(used)] = np.asarray(bank.sources)[used]
        return {"retrieved_sources": src, "team_seen_area_m2": float(self._team.area),
                "team_new_area_m2": float(team_new), "own_new_area_m2": float(own_new)}

    # ---------------------------------------------------------------- render, close

    def render(self):
        if self.render_mode == "rgb_array":
            return self._tiled_frames()[0]
        if self.render_mode == "human":
            self._show(self._tiled_frames())
        return None

    def _tiled_frames(self, frames=None, active=None) -> np.ndarray:
        """Every camera's frames side by side (1-pixel black gaps) -> uint8 (T, H, N*W + N-1, 3)."""
        H, W = self.frame_size
        N = len(self.envs)
        cur = np.stack([e.frame if e._started else np.zeros((H, W, 3), np.uint8) for e in self.envs])  # (N, H, W, 3)
        if frames is None:
            frames = cur[:, None]
        else:
            frames = np.where(np.asarray(active)[:, None, None, None, None], frames, cur[:, None])
        T = frames.shape[1]
        out = np.zeros((T, H, N * W + N - 1, 3), np.uint8)
        for i in range(N):
            out[:, :, i * (W + 1): i * (W + 1) + W] = frames[i]
        return out

    def _show(self, frames):
        if self._viewer is None:
            from camworld.envs.viewer import Viewer

            H, W = frames.shape[1:3]
            self._viewer = Viewer((H, W), fps=self.metadata["render_fps"], scale=max(1, 6 // len(self.envs)),
                                  title="camworld multi-agent")
        self._viewer.show(frames)

    def close(self):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        for env in self.envs:
            env.close()
        self.backend.close()
        self.agents = []

    def state(self) -> np.ndarray:
        """A global view: every camera's current frame side by side, uint8 (H, N*W + N-1, 3)."""
        return self._tiled_frames()[0]

    @property
    def memory(self):
        """The shared ``MemoryBank`` (``memory.sources[j]`` = the camera that made frame j)."""
        return self.backend.memories[0]


def _parse_tasks(task, n: int) -> list:
    tasks = [task] * n if task is None or isinstance(task, str) else list(task)
    if len(tasks) != n:
        raise ValueError(f"task must be one task name or a list of {n} (one per agent), got {len(tasks)}")
    bad = [t for t in tasks if t is not None and t not in AGENT_TASKS]
    if bad:
        raise ValueError(f"unknown task(s) {bad}; choose from {list(AGENT_TASKS)} or None")
    return tasks


def _accepts(cls, name: str) -> bool:
    """Whether some ``__init__`` in the task class's MRO names the keyword argument."""
    return any(name in inspect.signature(c.__init__).parameters for c in cls.__mro__ if "__init__" in vars(c)
               and c.__module__.startswith("camworld"))


def parallel_env(**kwargs) -> MultiAgentCamWorld:
    """The PettingZoo parallel env (PettingZoo's module convention: ``parallel_env`` and ``env``)."""
    return MultiAgentCamWorld(**kwargs)


def env(**kwargs):
    """The same env through PettingZoo's AEC API (``parallel_to_aec``)."""
    return parallel_to_aec(MultiAgentCamWorld(**kwargs))


def make_sb3_multi_agent_vec_env(seed: int | None = None, monitor: bool = True, **kwargs):
    """An SB3 ``VecEnv`` whose envs are the agents of one shared world (see ``multi_agent_sb3``)."""
    from camworld.envs.multi_agent_sb3 import make_sb3_multi_agent_vec_env as make

    return make(seed=seed, monitor=monitor, **kwargs)


def bench_shared_memory(checkpoint=None, episodes: int = 8, **kwargs) -> dict:
    """History-context PSNR of shared vs separate memories (see ``multi_agent_bench``)."""
    from camworld.envs.multi_agent_bench import bench_shared_memory as bench

    return bench(checkpoint, episodes, **kwargs)
