"""``camworld play``: walk through the generated world and its ground-truth twin (pygame window).

    camworld play                                   # the learned world (shipped checkpoint), a held-out scene
    camworld play --checkpoint runs/tiny.safetensors --scene-seed 1000003
    camworld play --env CamWorld-v0                 # start by driving the ground-truth twin
    camworld play --image photo.png                 # start from your own picture (learned world only)
    SDL_VIDEODRIVER=dummy camworld play --headless-steps 20 --screenshot play.png   # no screen

The window: the driving world's frame (large) | the other world's frame at the same pose, above the
top-down map (path in white, view fan in red, the memory frames retrieved as context in yellow) |
those context frames, oldest first | status: pose, retrieval strategy, context and memory size,
the last step's generation time, the keys.

Keys: W/S or Up/Down forward/backward, A/D or Left/Right turn, Q/E strafe, Space stay (still
generates), G drive the other world, T next retrieval strategy, R new episode, Esc quit. Each key
generates one segment of ``--frames-per-step`` frames.

Two worlds, one camera: the learned world (``ContextAsMemory-*``) and its twin (``CamWorld-*``,
the sim rendering the same scene) are reset with the same seed and step in lockstep with every key;
the twin renders in milliseconds, and identical start, walls and action bounds keep their poses
equal. G only changes which one drives: the large panel, the context strip and map, the reward and
the episode's end. Nothing restarts on a switch and each world keeps its own memory, so you can
compare what the model generates with the truth at any time. T sets the strategy of both worlds,
so they keep retrieving the same frames. Episodes started from ``--image`` have no twin (and no
walls: the map is a 1 m grid), and without a checkpoint ``--env CamWorld-v0`` plays the twin alone.
"""

from __future__ import annotations

import argparse
import os
import time

from camworld import threads
from camworld.retrieval import DEFAULT_STRATEGY

import numpy as np

WORLDS = ("generated", "ground truth")
BACKEND_OF = {"generated": "model", "ground truth": "sim"}
MOVE_KEYS = {"forward": ("w", "up"), "backward": ("s", "down"), "turn_left": ("a", "left"),
             "turn_right": ("d", "right"), "strafe_left": ("q",), "strafe_right": ("e",), "noop": ("space",)}
COMMAND_KEYS = {"g": "switch", "t": "retrieval", "r": "reset", "escape": "quit"}
LEGEND = "W/S move  A/D turn  Q/E strafe  Space stay  G world  T retrieval  R reset  Esc quit"
SCRIPT = ("w", "d", "w", "t", "w", "g", "a", "w", "q", "g", "e", "s")   # --headless-steps cycles these keys
MAP_RADIUS_M = 6.0


def _code(pg, name: str) -> int:
    return getattr(pg, f"K_{name}", None) or getattr(pg, f"K_{name.upper()}")


def key_bindings(pg) -> dict:
    """pygame key code -> discrete action index (``DISCRETE_ACTIONS``) or a command name."""
    from camworld.envs.actions import DISCRETE_ACTIONS

    names = [a[0] for a in DISCRETE_ACTIONS]
    table = {_code(pg, k): names.index(action) for action, keys in MOVE_KEYS.items() for k in keys}
    table.update({_code(pg, k): cmd for k, cmd in COMMAND_KEYS.items()})
    return table


class _CachedMap:
    """A scene whose top-down map is rasterised once (``viz.map_panel`` draws on a copy every frame)."""

    def __init__(self, scene):
        self.scene, self._img = scene, {}

    def map_image(self, px_per_m=8):
        if px_per_m not in self._img:
            self._img[px_per_m] = self.scene.map_image(px_per_m=px_per_m)
        return self._img[px_per_m]

    def world_to_map(self, xy, px_per_m=8):
        return self.scene.world_to_map(xy, px_per_m=px_per_m)


class _OpenMap:
    """Stands in for a scene on image starts (no known geometry): a 1 m grid centred on the camera."""

    def __init__(self, center_xy, half_m: float):
        self.x0, self.y1, self.half = center_xy[0] - half_m, center_xy[1] + half_m, half_m

    def map_image(self, px_per_m=8):
        n = int(round(2 * self.half * px_per_m))
        img = np.full((n, n, 3), 40, np.uint8)
        centres = (np.arange(n) + 0.5) / px_per_m                     # metres from the left/top edge
        on_x = np.abs((self.x0 + centres) - np.round(self.x0 + centres)) < 0.5 / px_per_m
        on_y = np.abs((self.y1 - centres) - np.round(self.y1 - centres)) < 0.5 / px_per_m
        img[:, on_x] = 70
        img[on_y, :] = 70
        return img

    def world_to_map(self, xy, px_per_m=8):
        p = np.asarray(xy, np.float64)
        return np.stack([(p[..., 0] - self.x0) * px_per_m, (self.y1 - p[..., 1]) * px_per_m], -1)


def _set_retrieval(env, name: str):
    """Switch an env's retrieval strategy for its next step (its backend's World)."""
    backend = env.unwrapped.backend
    backend.retrieval = backend.world.retrieval = name


class Play:
    """One play session: up to two worlds stepped in lockstep, the one that drives, the window.

    Args:
        envs: {"generated": env or None, "ground truth": env or None}, at least one; both built
            with the same task, frames per step, context size and action bounds.
        window: a ``viewer.PlayWindow``.
        driving: the world that drives first (default: generated when there is one).
        seed: the first episode's reset seed; later episodes draw theirs from it.
        options: reset options for every episode (``RESET_OPTIONS``).
        fps: segment playback rate; 0 draws only the last frame of each step.
        notes: {world: why it is missing}, shown when G asks for it.
    """

    def __init__(self, envs: dict, window, *, driving: str | None = None, seed: int = 0, options=None,
                 fps: float = 0.0, notes: dict | None = None):
        from camworld.retrieval import STRATEGIES

        self.envs = {w: envs[w] for w in WORLDS if envs.get(w) is not None}
        if not self.envs:
            raise ValueError("Play needs at least one env: envs['generated'] or envs['ground truth']")
        self.driving = driving or next(iter(self.envs))
        if self.driving not in self.envs:
            raise ValueError(f"driving={self.driving!r} but only {list(self.envs)} exist")
        self.window, self.fps = window, float(fps)
        self.options = dict(options or {})
        self.notes = dict(notes or {})
        self.bindings = key_bindings(window.pygame)
        self.strategies = list(STRATEGIES)
        first = self.envs[self.driving].unwrapped
        self.strategy, self.k, self.T = first.backend.retrieval, first.context_size, first.frames_per_step
        self.task = (self.envs[self.driving].spec.kwargs.get("task") if self.envs[self.driving].spec else None)
        self._rng = np.random.default_rng(seed)
        self.reset(seed)

    # ---------------------------------------------------------------- commands

    def press(self, key: int) -> bool:
        """Handle one key press; False when the session should end (Esc)."""
        what = self.bindings.get(key)
        if what is None:
            return True
        if what == "quit":
            return False
        if what == "switch":
            self.switch()
        elif what == "retrieval":
            self.next_retrieval()
        elif what == "reset":
            self.reset()
        else:
            self.step(what)
        return True

    def reset(self, seed: int | None = None):
        """A new episode in every world, from the same seed (so the same scene and start pose)."""
        seed = int(self._rng.integers(0, 2**31 - 1)) if seed is None else int(seed)
        self.info = {w: env.reset(seed=seed, options=self.options or None)[1] for w, env in self.envs.items()}
        d = self.info[self.driving]
        self.path = list(d["poses"])
        self.steps, self.reward, self.episode_return = 0, 0.0, 0.0
        self.seconds: dict = {}
        self.message = f"new episode: scene {d['scene_seed']}" if d["scene_seed"] >= 0 else "new episode from your image"
        self._check_lockstep()
        self.draw()

    def step(self, action: int):
        """Step every world with the same action; time each one."""
        for w, env in self.envs.items():
            t0 = time.perf_counter()
            _, reward, terminated, truncated, info = env.step(action)
            self.seconds[w] = time.perf_counter() - t0
            self.info[w] = info
            if w == self.driving:
                done, r = terminated or truncated, reward
        self.steps += 1
        self.reward, self.episode_return = r, self.episode_return + r
        self.path.extend(self.info[self.driving]["poses"])
        self.message = "a wall stopped the camera" if self.info[self.driving]["collided"] else ""
        self._check_lockstep()
        self.play_segment()
        if done:
            over = f"episode over after {self.steps} steps" + (f" (return {self.episode_return:+.2f})" if self.task else "")
            self.reset()
            self.message = f"{over}: new episode"
            self.draw()

    def switch(self):
        other = self.other
        if other not in self.envs:
            self.message = self.notes.get(other, f"no {other} world in this session")
        else:
            self.driving = other
            self.message = f"now driving the {other} world (same camera; both keep their memory)"
        self.draw()

    def next_retrieval(self):
        i = self.strategies.index(self.strategy) if self.strategy in self.strategies else -1
        self.strategy = self.strategies[(i + 1) % len(self.strategies)]
        for env in self.envs.values():
            _set_retrieval(env, self.strategy)
        self.message = f"retrieval strategy: {self.strategy} (from the next step, both worlds)"
        self.draw()

    @property
    def other(self) -> str:
        return WORLDS[1 - WORLDS.index(self.driving)]

    def _check_lockstep(self):
        if len(self.envs) < 2:
            return
        a, b = (self.info[w] for w in WORLDS)
        if a["scene_seed"] != b["scene_seed"] or not np.allclose(a["pose"], b["pose"], atol=1e-6):
            self.message = (f"the worlds' cameras diverged ({a['pose'].round(2)} vs {b['pose'].round(2)}); "
                            "press R for a new episode")

    # ---------------------------------------------------------------- drawing

    def play_segment(self):
        """Draw the last step's frames at ``fps`` (only the last frame when fps is 0)."""
        T = len(self.info[self.driving]["frames"])
        for t in (range(T) if self.fps > 0 else [T - 1]):
            self.draw(t)
            self.window.tick(self.fps)

    def draw(self, t: int = -1):
        """Draw frame t of the current segment of every panel."""
        from camworld.viz import map_panel

        d = self.info[self.driving]
        T = len(d["frames"])
        t = t % T
        u = self.envs[self.driving].unwrapped
        mem = u.backend.memories[u.slot]
        used = d["retrieved"][d["retrieved"] >= 0]
        context = mem.frames(used) if len(used) else None
        path = np.asarray(self.path)
        j = len(path) - T + t
        if u.scene is not None:
            if getattr(self, "_map_scene", None) is not u.scene:
                self._map_scene, self._map = u.scene, _CachedMap(u.scene)
            scene = self._map
        else:
            scene = _OpenMap(path[j, :2], MAP_RADIUS_M + 1)
        size = self.window.map_size
        map_img = map_panel(scene, path, j, used, mem.poses, size, radius_m=MAP_RADIUS_M)
        other = self.info[self.other]["frames"][t] if self.other in self.info else None
        titles = {"main": self.driving, "map": "map: yellow = context", "context": "context, oldest first",
                  "other": f"{self.other}, same pose" if other is not None else self.notes.get(self.other, "")}
        self.window.draw(d["frames"][t], other, map_img, context, titles, self.status_lines(len(used)))

    def status_lines(self, n_context: int | None = None) -> list:
        d = self.info[self.driving]
        x, y, yaw = d["pose"]
        if n_context is None:
            n_context = int((d["retrieved"] >= 0).sum())
        wall = "  [wall]" if d["collided"] else ""
        task = f"  reward {self.reward:+.2f}  return {self.episode_return:+.2f}" if self.task else ""
        lines = [
            f"{self.driving.upper()}  step {self.steps}  x {x:+.2f} m  y {y:+.2f} m  yaw {np.rad2deg(yaw):+.0f} deg{wall}",
            f"retrieval {self.strategy}  context {n_context}/{self.k}  memory {d['memory_size']} frames{task}",
            self._timing(),
            LEGEND,
            self.message,
        ]
        return lines

    def _timing(self) -> str:
        if not self.seconds:
            return "generation time: press a key to step"
        parts = []
        if "generated" in self.seconds:
            s = self.seconds["generated"]
            parts.append(f"generation {_ms(s)} ms/step ({_ms(s / self.T)} ms/frame)")
        if "ground truth" in self.seconds:
            parts.append(f"ground truth {_ms(self.seconds['ground truth'])} ms")
        return "  ".join(parts)

    def close(self):
        for env in self.envs.values():
            env.close()
        self.window.close()


def _ms(seconds: float) -> str:
    ms = 1000.0 * seconds
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"


# ---------------------------------------------------------------- loop


def play_loop(game: Play, events) -> int:
    """Feed pygame events to a session until they run out, the window closes or Esc. -> keys handled."""
    pg = game.window.pygame
    n = 0
    for event in events:
        if event.type == pg.QUIT:
            break
        if event.type in (pg.VIDEOEXPOSE, getattr(pg, "WINDOWEXPOSED", -1)):
            game.draw()
            continue
        if event.type != pg.KEYDOWN:
            continue
        if not game.press(event.key):
            break
        n += 1
    return n


def live_events(pg):
    while True:
        yield pg.event.wait()


def scripted_events(pg, n: int, keys=SCRIPT):
    """n KEYDOWN events cycling through key names (``SCRIPT``: moves, T and G)."""
    for i in range(n):
        yield pg.event.Event(pg.KEYDOWN, key=_code(pg, keys[i % len(keys)]))


# ---------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--env", default="ContextAsMemory-v0",
                   help="id that drives first (its twin of the other backend runs beside it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scene-seed", type=int, default=None)
    p.add_argument("--image", default=None, help="a start picture (PNG/JPEG), learned world only")
    p.add_argument("--frames-per-step", type=int, default=4)
    p.add_argument("--context-size", type=int, default=8, help="k: context frames per step")
    p.add_argument("--retrieval", default=DEFAULT_STRATEGY, help="first retrieval strategy (T cycles)")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--scale", type=int, default=6, help="window pixels per frame pixel")
    p.add_argument("--fps", type=float, default=None,
                   help="segment playback frames/s (default: the world's; 0: only each step's last frame)")
    p.add_argument("--headless-steps", type=int, default=None, metavar="N",
                   help="no keyboard: press N scripted keys (moves, T, G) and exit; SDL_VIDEODRIVER=dummy if no display")
    p.add_argument("--screenshot", default=None, help="save the window as PNG on exit")
    threads.add_argument(p)


def make_play(args) -> Play:
    """Build the two worlds and the window from parsed arguments."""
    import gymnasium as gym

    import camworld  # noqa: F401  (registers the ids)
    from camworld.envs.backends import SimBackend
    from camworld.envs.registration import ENV_TABLE
    from camworld.envs.viewer import PlayWindow
    from camworld.retrieval import STRATEGIES

    rows = {r[0]: r for r in ENV_TABLE}
    if args.env not in rows:
        raise SystemExit(f"camworld play: unknown --env {args.env!r}; choose from {list(rows)}")
    if args.retrieval not in STRATEGIES:
        raise SystemExit(f"camworld play: unknown --retrieval {args.retrieval!r}; choose from {list(STRATEGIES)}")
    _, first_backend, task, _ = rows[args.env]
    ids = {w: next(r[0] for r in ENV_TABLE if r[1] == BACKEND_OF[w] and r[2] == task) for w in WORLDS}
    first = next(w for w in WORLDS if BACKEND_OF[w] == first_backend)
    envs, notes, options = {}, {}, {}
    if args.scene_seed is not None:
        options["scene_seed"] = args.scene_seed
    if args.image:
        if first == "ground truth":
            raise SystemExit("camworld play: --image needs the learned world (the twin only renders its own "
                             "scenes); drop --env or pass --env ContextAsMemory-v0")
        from PIL import Image

        options["image"] = np.asarray(Image.open(args.image).convert("RGB"))
    common = dict(frames_per_step=args.frames_per_step)
    try:
        envs["generated"] = gym.make(ids["generated"], checkpoint=args.checkpoint, device=args.device,
                                     retrieval=args.retrieval, context_size=args.context_size,
                                     torch_threads=args.threads, **common)
    except FileNotFoundError as e:
        if first == "generated":
            raise SystemExit(f"camworld play: {e}. Pass --checkpoint PATH (train one with `camworld train`), "
                             "or play the ground-truth twin alone: camworld play --env CamWorld-v0") from None
        notes["generated"] = "no learned world (no checkpoint)"
        print(f"camworld play: {e}: playing the ground-truth twin alone")
    if args.image:
        notes["ground truth"] = "no ground truth (image start)"
    else:
        gen = envs.get("generated")
        size = gen.unwrapped.frame_size if gen is not None else (64, 64)
        stride = gen.unwrapped.backend.frame_stride if gen is not None else 4   # same action bounds as the model
        backend = SimBackend(1, size, args.retrieval, args.context_size, frame_stride=stride)
        envs["ground truth"] = gym.make(ids["ground truth"], backend=backend, **common)
    u = envs[first].unwrapped
    window = PlayWindow(u.frame_size, u.context_size, scale=args.scale, title=f"camworld play: {args.env}")
    fps = u.bounds.fps if args.fps is None else args.fps
    if args.headless_steps is not None:
        fps = 0.0
    try:
        return Play(envs, window, driving=first, seed=args.seed, options=options, fps=fps, notes=notes)
    except Exception:
        window.close()
        raise


def run(args) -> int:
    from camworld.envs.viewer import HEADLESS_DRIVERS, NO_DISPLAY_HELP, display_problem

    headless = args.headless_steps is not None
    if headless and display_problem():
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    problem = display_problem()
    if problem:
        raise SystemExit(f"camworld play opens a window, and there is {problem}; {NO_DISPLAY_HELP}")
    if not headless and os.environ.get("SDL_VIDEODRIVER", "").lower() in HEADLESS_DRIVERS:
        raise SystemExit(f"camworld play: SDL_VIDEODRIVER={os.environ['SDL_VIDEODRIVER']} draws off-screen and "
                         "has no keyboard; pass --headless-steps N for a scripted walk (with --screenshot "
                         "play.png to see it), or unset SDL_VIDEODRIVER to play in a window")
    try:
        import pygame  # noqa: F401
    except ImportError:
        raise SystemExit("camworld play needs pygame: pip install pygame (or camworld[play])") from None

    try:
        game = make_play(args)
    except (ValueError, RuntimeError) as e:
        raise SystemExit(f"camworld play: {e}") from None
    pg = game.window.pygame
    try:
        if headless:
            play_loop(game, scripted_events(pg, args.headless_steps))
        else:
            print(__doc__.split("Keys:")[1].split("\n\n")[0].strip())
            play_loop(game, live_events(pg))
        if args.screenshot:
            game.window.save(args.screenshot)
            print(f"wrote {args.screenshot}")
        print("\n".join(line for line in game.window.lines if line and line != LEGEND))
    finally:
        game.close()
    return 0
