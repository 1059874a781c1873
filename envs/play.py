"""``camworld play``: walk through a generated world with the keyboard (pygame window).

    camworld play                              # the learned world, a held-out scene
    camworld play --env CamWorld-v0            # the ground-truth twin
    camworld play --image photo.png            # start from your own picture (learned world)

Keys: W/S or Up/Down forward/backward, A/D or Left/Right turn, Q/E strafe, Space noop,
R reset, Esc quit. Each key press generates one segment of ``--frames-per-step`` frames.
"""

from __future__ import annotations

import argparse

import numpy as np


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--env", default="ContextAsMemory-v0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scene-seed", type=int, default=None)
    p.add_argument("--image", default=None, help="a start picture (PNG/JPEG), learned world only")
    p.add_argument("--frames-per-step", type=int, default=4)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--scale", type=int, default=6, help="window pixels per frame pixel")


def run(args) -> int:
    import gymnasium as gym
    try:
        import pygame
    except ImportError:
        raise SystemExit("camworld play needs pygame: pip install pygame (or camworld[play])")

    import camworld  # noqa: F401  (registers the ids)
    from camworld.envs.viewer import Viewer

    kwargs = dict(frames_per_step=args.frames_per_step)
    if args.env.startswith("ContextAsMemory"):
        kwargs.update(checkpoint=args.checkpoint, device=args.device)
    env = gym.make(args.env, **kwargs)
    options = {}
    if args.scene_seed is not None:
        options["scene_seed"] = args.scene_seed
    if args.image:
        from PIL import Image

        options["image"] = np.asarray(Image.open(args.image).convert("RGB"))
    keys = {pygame.K_w: 1, pygame.K_UP: 1, pygame.K_s: 2, pygame.K_DOWN: 2, pygame.K_a: 3, pygame.K_LEFT: 3,
            pygame.K_d: 4, pygame.K_RIGHT: 4, pygame.K_q: 5, pygame.K_e: 6, pygame.K_SPACE: 0}
    obs, info = env.reset(seed=args.seed, options=options or None)
    u = env.unwrapped
    viewer = Viewer(u.frame_size, fps=u.bounds.fps, scale=args.scale, title=f"camworld play: {args.env}")
    viewer.show(info["frames"][-1])
    print(__doc__.split("Keys:")[1].strip())
    try:
        while True:
            event = pygame.event.wait()
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                break
            if event.type != pygame.KEYDOWN:
                continue
            if event.key == pygame.K_r:
                obs, info = env.reset(options=options or None)
            elif event.key in keys:
                obs, reward, terminated, truncated, info = env.step(keys[event.key])
                x, y, yaw = info["pose"]
                print(f"pose ({x:.2f}, {y:.2f}, {np.rad2deg(yaw):.0f} deg) "
                      f"reward {reward:.2f} memory {info['memory_size']}{' [wall]' if info['collided'] else ''}")
                if terminated or truncated:
                    obs, info = env.reset(options=options or None)
            else:
                continue
            viewer.show(info["frames"])
    finally:
        viewer.close()
        env.close()
    return 0
