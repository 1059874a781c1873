"""A small mutable grid builder that the style generators paint into, then freeze into a Scene.

Coordinates are cell indices ``(ix, iy)``; rectangles are half-open ``[x0, x1) x [y0, y1)``.
The finished scene is centred on the world origin.
"""

from __future__ import annotations

import numpy as np

from camworld.sim.scene import Scene
from camworld.sim.textures import Skin, colour_name, hsv


class Builder:
    """Paint walls, floors and landmarks into a (gh, gw) grid of ``cell``-metre cells."""

    def __init__(self, gw: int, gh: int, cell: float, rng: np.random.Generator):
        self.gw, self.gh, self.cell, self.rng = gw, gh, cell, rng
        self.wall = np.zeros((gh, gw), np.uint8)
        self.height = np.zeros((gh, gw), np.float32)
        self.floor = np.zeros((gh, gw), np.uint8)
        self.solid = np.zeros((gh, gw), bool)
        self.wall_skins: list = []
        self.floor_skins: list = []
        self.landmarks: list = []
        self.rooms: list = []

    # materials -----------------------------------------------------------------------------------
    def wskin(self, skin: Skin) -> int:
        """Register a wall skin; returns its id (>= 1)."""
        self.wall_skins.append(skin)
        if len(self.wall_skins) > 250:
            raise ValueError("too many wall skins in one scene (max 250)")
        return len(self.wall_skins)

    def fskin(self, skin: Skin) -> int:
        """Register a floor skin; returns its index."""
        self.floor_skins.append(skin)
        return len(self.floor_skins) - 1

    def colour(self, s=(0.4, 0.8), v=(0.5, 0.9), h=None) -> tuple:
        """A random colour (RGB floats) with saturation/value in the given ranges."""
        r = self.rng
        return hsv(r.random() if h is None else h % 1.0, r.uniform(*s), r.uniform(*v))

    # painting ------------------------------------------------------------------------------------
    def _clip(self, x0, y0, x1, y1):
        return max(0, int(x0)), max(0, int(y0)), min(self.gw, int(x1)), min(self.gh, int(y1))

    def block(self, x0, y0, x1, y1, skin: int, height: float, solid: bool = True):
        """Fill a rectangle of cells with a wall block of ``skin`` and top ``height`` metres."""
        x0, y0, x1, y1 = self._clip(x0, y0, x1, y1)
        self.wall[y0:y1, x0:x1] = skin
        self.height[y0:y1, x0:x1] = height
        self.solid[y0:y1, x0:x1] = solid

    def clear(self, x0, y0, x1, y1):
        """Remove walls (and solidity) from a rectangle."""
        x0, y0, x1, y1 = self._clip(x0, y0, x1, y1)
        self.wall[y0:y1, x0:x1] = 0
        self.height[y0:y1, x0:x1] = 0.0
        self.solid[y0:y1, x0:x1] = False

    def ground(self, x0, y0, x1, y1, fskin: int, solid: bool | None = None):
        """Set the floor skin of a rectangle (optionally marking it solid, e.g. water)."""
        x0, y0, x1, y1 = self._clip(x0, y0, x1, y1)
        self.floor[y0:y1, x0:x1] = fskin
        if solid is not None:
            self.solid[y0:y1, x0:x1] = solid

    def is_empty(self, x0, y0, x1, y1, margin: int = 0) -> bool:
        """True when no solid cell lies in the rectangle grown by ``margin`` and it fits in the grid."""
        if x0 - margin < 0 or y0 - margin < 0 or x1 + margin > self.gw or y1 + margin > self.gh:
            return False
        return not self.solid[y0 - margin:y1 + margin, x0 - margin:x1 + margin].any()

    def centre(self, x0, y0, x1, y1) -> tuple:
        """World (x, y) metres of the centre of a cell rectangle (scene is centred on the origin)."""
        return ((0.5 * (x0 + x1) - 0.5 * self.gw) * self.cell, (0.5 * (y0 + y1) - 0.5 * self.gh) * self.cell)

    def landmark(self, name: str, x0, y0, x1, y1):
        cx, cy = self.centre(x0, y0, x1, y1)
        self.landmarks.append((name, float(cx), float(cy)))

    def border(self, skin: int, height: float, thickness: int = 1):
        """A solid ring around the whole grid."""
        t = thickness
        self.block(0, 0, self.gw, t, skin, height)
        self.block(0, self.gh - t, self.gw, self.gh, skin, height)
        self.block(0, 0, t, self.gh, skin, height)
        self.block(self.gw - t, 0, self.gw, self.gh, skin, height)

    def scatter(self, n: int, size, skin_fn, height_fn, margin: int = 1, name_fn=None, tries: int = 40):
        """Place up to ``n`` blocks of random size in empty ground; ``skin_fn()``/``height_fn()`` pick
        their look; ``name_fn()`` names them as landmarks. Returns the placed rectangles."""
        placed = []
        r = self.rng
        for _ in range(n):
            for _ in range(tries):
                w, h = int(r.integers(size[0], size[1] + 1)), int(r.integers(size[0], size[1] + 1))
                x0, y0 = int(r.integers(1, max(2, self.gw - w - 1))), int(r.integers(1, max(2, self.gh - h - 1)))
                if self.is_empty(x0, y0, x0 + w, y0 + h, margin):
                    self.block(x0, y0, x0 + w, y0 + h, skin_fn(), height_fn())
                    if name_fn is not None:
                        self.landmark(name_fn(), x0, y0, x0 + w, y0 + h)
                    placed.append((x0, y0, x0 + w, y0 + h))
                    break
        return placed

    # output ----------------------------------------------------------------------------------------
    def build(self, seed: int, style: str, **kw) -> Scene:
        """Freeze into a :class:`Scene` centred on the world origin."""
        origin = (-0.5 * self.gw * self.cell, -0.5 * self.gh * self.cell)
        return Scene(seed=int(seed), style=style, cell=float(self.cell), origin=origin,
                     wall=self.wall.copy(), height=self.height.copy(), floor=self.floor.copy(),
                     solid=self.solid.copy(), wall_skins=tuple(self.wall_skins),
                     floor_skins=tuple(self.floor_skins), landmarks=tuple(self.landmarks),
                     rooms=tuple(self.rooms), **kw)


def named(skin_name: str, rgb) -> str:
    """'{colour} {skin_name}', e.g. named('brick wall', (0.8, 0.1, 0.1)) -> 'red brick wall'."""
    return f"{colour_name(rgb)} {skin_name}"
