"""A pygame window for ``render_mode="human"`` and ``camworld play`` (pygame is imported here only).

Headless machines: set ``SDL_VIDEODRIVER=dummy`` to render to an off-screen surface.
"""

from __future__ import annotations

import numpy as np


class Viewer:
    """Shows uint8 (H, W, 3) frames, upscaled by an integer factor, at a fixed frame rate."""

    def __init__(self, frame_size, fps: float, scale: int = 6, title: str = "camworld"):
        try:
            import pygame
        except ImportError as e:
            raise ImportError("render_mode='human' needs pygame: pip install pygame (or camworld[play]); "
                              "use render_mode='rgb_array' to get frames as arrays instead") from e
        self.pygame = pygame
        pygame.display.init()
        H, W = frame_size
        self.scale, self.fps = int(scale), float(fps)
        self.screen = pygame.display.set_mode((W * self.scale, H * self.scale))
        pygame.display.set_caption(title)
        self.clock = pygame.time.Clock()
        self.closed = False

    def show(self, frames: np.ndarray, fps: float | None = None):
        """Show frames (T, H, W, 3) or one frame (H, W, 3), one per 1/fps seconds."""
        pg, fps = self.pygame, self.fps if fps is None else float(fps)
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        for f in frames:
            pg.event.pump()
            big = f.repeat(self.scale, 0).repeat(self.scale, 1)
            surf = pg.surfarray.make_surface(np.ascontiguousarray(big.transpose(1, 0, 2)))
            self.screen.blit(surf, (0, 0))
            pg.display.flip()
            self.clock.tick(fps)

    def close(self):
        if not self.closed:
            self.pygame.display.quit()
            self.closed = True
