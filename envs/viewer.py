"""pygame windows: ``Viewer`` for ``render_mode="human"``, ``PlayWindow`` for ``camworld play``.

pygame is imported here (and in ``play``) only. Headless machines: set ``SDL_VIDEODRIVER=dummy``
to draw into an off-screen surface; ``display_problem()`` says, before pygame starts, whether a
window can open at all.

Letters: H/W frame size, k context size.
"""

from __future__ import annotations

import os
import sys

import numpy as np

HEADLESS_DRIVERS = ("dummy", "offscreen")
NO_DISPLAY_HELP = ("to run headless set SDL_VIDEODRIVER=dummy (an off-screen window: "
                   "`SDL_VIDEODRIVER=dummy camworld play --headless-steps 20 --screenshot play.png`), "
                   "or run `camworld demo` to render an MP4 instead; for a real window run it in a desktop "
                   "session or over `ssh -X`")


def display_problem(environ=None, platform: str | None = None) -> str | None:
    """Why no window can open here, or None when one can (or SDL is told to draw off-screen).

    Only X11/Wayland systems are judged (macOS and Windows always have a display); an explicit
    ``SDL_VIDEODRIVER`` other than x11/wayland is left to SDL to try.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    driver = env.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver in HEADLESS_DRIVERS or not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    if driver in ("", "x11") and env.get("DISPLAY"):
        return None
    if driver in ("", "wayland") and env.get("WAYLAND_DISPLAY"):
        return None
    if driver not in ("", "x11", "wayland"):
        return None
    wanted = f"SDL_VIDEODRIVER={driver} but " if driver else ""
    return f"no display: {wanted}DISPLAY and WAYLAND_DISPLAY are not set"


def _pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    return pygame


def _open_display(pg, size, title: str, what: str):
    """pygame.display.set_mode with SDL's failure turned into an error that says what to do."""
    try:
        pg.display.init()
        screen = pg.display.set_mode(size)
    except pg.error as e:
        raise RuntimeError(f"{what} could not open a window ({display_problem() or 'SDL'}: {e}); "
                           f"{NO_DISPLAY_HELP}") from None
    pg.display.set_caption(title)
    return screen


def _surface(pg, img: np.ndarray):
    """uint8 (H, W, 3) -> a pygame Surface (pygame indexes pixels (x, y))."""
    return pg.surfarray.make_surface(np.ascontiguousarray(np.asarray(img, np.uint8).transpose(1, 0, 2)))


def fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of uint8 (H, W, 3) to (h, w, 3): pixels stay sharp at integer scales."""
    H, W = img.shape[:2]
    return img[(np.arange(h) * H) // h][:, (np.arange(w) * W) // w]


class Viewer:
    """Shows uint8 (H, W, 3) frames, upscaled by an integer factor, at a fixed frame rate."""

    def __init__(self, frame_size, fps: float, scale: int = 6, title: str = "camworld"):
        try:
            pygame = _pygame()
        except ImportError as e:
            raise ImportError("render_mode='human' needs pygame: pip install pygame (or camworld[play]); "
                              "use render_mode='rgb_array' to get frames as arrays instead") from e
        self.pygame = pygame
        H, W = frame_size
        self.scale, self.fps = int(scale), float(fps)
        self.screen = _open_display(pygame, (W * self.scale, H * self.scale), title,
                                    "render_mode='human' (use render_mode='rgb_array' for arrays)")
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
            self.screen.blit(_surface(pg, f.repeat(self.scale, 0).repeat(self.scale, 1)), (0, 0))
            pg.display.flip()
            self.clock.tick(fps)

    def close(self):
        if not self.closed:
            self.pygame.display.quit()
            self.closed = True


class PlayWindow:
    """The ``camworld play`` window, drawn from numpy panels plus text::

        +----------------------+-----------+
        |                      | other     |      main: the driving world's frame (H*scale, W*scale)
        |  main                +-----------+      other: the other world at the same pose (half size)
        |                      | map       |      map: top-down map (square)
        +----------------------+-----------+
        | context: k thumbnails, oldest first  |
        | status lines (pose, strategy, timing, keys) |
    """

    MIN_WIDTH = 600          # room for the status text with small frames
    BACKGROUND = (24, 24, 28)

    def __init__(self, frame_size, context_size: int, scale: int = 6, title: str = "camworld play",
                 status_lines: int = 5, font_px: int = 18):
        pg = self.pygame = _pygame()
        H, W = (int(v) for v in frame_size)
        if scale < 1:
            raise ValueError(f"scale must be an int >= 1 (window pixels per frame pixel), got {scale}")
        k = max(1, int(context_size))
        bh, bw = H * scale, W * scale
        cw = max(1, bw // 2)
        self.rects = {                                             # name -> (top, left, h, w)
            "main": (0, 0, bh, bw),
            "other": (0, bw, bh // 2, cw),
        }
        m = min(cw, bh - bh // 2)
        self.rects["map"] = (bh // 2, bw + (cw - m) // 2, m, m)
        tw = max(1, (bw + cw) // k)
        th = max(1, round(tw * H / W))
        self.thumb, self.k = (th, tw), k
        self.strip_top = bh + 2
        pg.font.init()
        self.font = pg.font.Font(None, font_px)
        self.line_h = self.font.get_linesize()
        self.status_top = self.strip_top + th + 4
        self.size = (max(bw + cw, self.MIN_WIDTH), self.status_top + status_lines * self.line_h + 4)  # (width, height)
        self.screen = _open_display(pg, self.size, title, "camworld play")
        self.clock = pg.time.Clock()
        self.lines: list = []
        self.closed = False

    @property
    def map_size(self) -> int:
        return self.rects["map"][2]

    def draw(self, main, other, map_img, context, titles: dict, lines: list):
        """Draw one screen and flip.

        Args:
            main: uint8 (H, W, 3), the driving world's frame.
            other: uint8 (H, W, 3) or None (a blank panel).
            map_img: uint8 (m, m, 3) or None.
            context: uint8 (n <= k, H, W, 3) frames used as context, oldest first.
            titles: {"main"|"other"|"map"|"context": str} captions drawn over the panels.
            lines: status text, one string per line.
        """
        pg = self.pygame
        canvas = np.empty((self.size[1], self.size[0], 3), np.uint8)
        canvas[:] = self.BACKGROUND
        for name, img in (("main", main), ("other", other), ("map", map_img)):
            top, left, h, w = self.rects[name]
            canvas[top:top + h, left:left + w] = 0 if img is None else fit(np.asarray(img), h, w)
        th, tw = self.thumb
        for j in range(self.k):
            x = j * tw
            if context is not None and j < len(context):
                canvas[self.strip_top:self.strip_top + th, x:x + tw - 1] = fit(context[j], th, tw - 1)
            else:
                canvas[self.strip_top:self.strip_top + th, x:x + tw - 1] = 8
        pg.event.pump()
        self.screen.blit(_surface(pg, canvas), (0, 0))
        anchors = {name: (left + 3, top + 3) for name, (top, left, _, _) in self.rects.items()}
        anchors["context"] = (3, self.strip_top + 3)
        for name, text in titles.items():
            if text:
                self._text(text, anchors[name], background=(0, 0, 0))
        for i, line in enumerate(lines):
            self._text(line, (6, self.status_top + i * self.line_h))
        self.lines = list(lines)
        pg.display.flip()

    def _text(self, text: str, xy, color=(235, 235, 235), background=None):
        surf = self.font.render(text, True, color, background)
        self.screen.blit(surf, xy)

    def tick(self, fps: float):
        """Wait so that frames come at most ``fps`` per second (no wait when fps <= 0)."""
        if fps > 0:
            self.clock.tick(fps)

    def snapshot(self) -> np.ndarray:
        """The window's pixels, uint8 (height, width, 3)."""
        return self.pygame.surfarray.array3d(self.screen).transpose(1, 0, 2).copy()

    def save(self, path) -> None:
        """Write the window as PNG (or any format pygame.image.save knows from the suffix)."""
        self.pygame.image.save(self.screen, str(path))

    def close(self):
        if not self.closed:
            self.pygame.display.quit()
            self.closed = True
