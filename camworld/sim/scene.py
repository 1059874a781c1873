"""The ground-truth world: a 2.5D grid of textured blocks on a textured ground, under a sky or a ceiling.

A scene is a 2D grid of square cells (``cell`` metres). A cell may hold a wall block (a skin id and a
top height) and always has a floor skin; ``solid`` marks the cells nobody may walk into (walls,
water). The camera moves in the ground plane with yaw only, at ``geometry.CAMERA_HEIGHT``.
Cell ``(iy, ix)`` covers ``x0 + ix * cell <= x < x0 + (ix + 1) * cell`` (and likewise in y).

Letters: GH/GW grid rows/columns (y/x), P points.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from camworld.sim.textures import Skin, Sky, mean_colour

DEFAULT_CLEARANCE = 0.3  # metres between the camera centre and any solid cell


@dataclass(eq=False)
class Scene:
    """A procedural scene (built by :func:`camworld.sim.make_scene`; cheap, deterministic, picklable).

    Attributes:
        seed, style: what built it (``make_scene(seed, style)`` rebuilds it exactly).
        cell: cell size in metres.
        origin: world ``(x0, y0)`` of the grid's low corner, metres.
        wall: uint8 (GH, GW) wall skin id per cell; 0 = no wall, k uses ``wall_skins[k - 1]``.
        height: float32 (GH, GW) top of the wall block in metres (0 where there is none).
        floor: uint8 (GH, GW) index into ``floor_skins``.
        solid: bool (GH, GW) cells that block walking (every wall, plus water and the like).
        wall_skins, floor_skins: the materials.
        ceiling: ceiling height in metres indoors, None outdoors (sky above).
        ceiling_skin: the ceiling material indoors.
        sky: the sky panorama outdoors.
        fog_rgb, fog_dist: distant surfaces fade to ``fog_rgb`` with e-folding distance ``fog_dist`` metres.
        landmarks: ``(name, x, y)`` of notable things, used by captions and maps.
        rooms: names of regions (rooms, halls, streets) for captions.
    """

    seed: int
    style: str
    cell: float
    origin: tuple
    wall: np.ndarray
    height: np.ndarray
    floor: np.ndarray
    solid: np.ndarray
    wall_skins: tuple
    floor_skins: tuple
    ceiling: float | None = None
    ceiling_skin: Skin | None = None
    sky: Sky | None = None
    fog_rgb: tuple = (0.7, 0.75, 0.8)
    fog_dist: float = 30.0
    landmarks: tuple = ()
    rooms: tuple = ()
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self):  # render tables are rebuilt on demand, never pickled
        state = self.__dict__.copy()
        state["_cache"] = {k: v for k, v in self._cache.items() if k == "free_cells"}
        return state

    # --------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """(GH, GW) grid size in cells."""
        return self.wall.shape

    @property
    def indoor(self) -> bool:
        return self.ceiling is not None

    @property
    def extent(self) -> tuple:
        """(xmin, xmax, ymin, ymax) in metres."""
        gh, gw = self.shape
        x0, y0 = self.origin
        return (float(x0), float(x0 + gw * self.cell), float(y0), float(y0 + gh * self.cell))

    # --------------------------------------------------------------------------------------------
    def is_free(self, xy, clearance: float = DEFAULT_CLEARANCE) -> np.ndarray:
        """Whether a camera at each point keeps ``clearance`` metres from every solid cell and the border.

        Args:
            xy: (..., 2) world points in metres.
            clearance: metres, >= 0.
        Returns:
            bool array (...).
        """
        p = np.asarray(xy, dtype=np.float64)
        if p.shape[-1:] != (2,):
            raise ValueError(f"xy must have shape (..., 2), got {p.shape}")
        if clearance < 0:
            raise ValueError(f"clearance must be >= 0 metres, got {clearance}")
        r = clearance / self.cell
        k = int(np.ceil(r))
        pad = k + 1
        solid = self._cache.get(("solid_pad", pad))
        if solid is None:  # outside the grid counts as solid
            solid = self._cache[("solid_pad", pad)] = np.pad(self.solid, pad, constant_values=True)
        gwp = solid.shape[1]
        flat = solid.ravel()
        g = (p - np.asarray(self.origin)) / self.cell + pad     # grid coords in the padded grid
        finite = np.isfinite(g).all(-1)
        g = np.where(finite[..., None], g, 0.0)
        # points beyond the grid land in the solid padding; keep every neighbour index in range
        gx = np.minimum(np.maximum(g[..., 0], k), solid.shape[1] - k - 1e-6)
        gy = np.minimum(np.maximum(g[..., 1], k), solid.shape[0] - k - 1e-6)
        ix, iy = gx.astype(np.intp), gy.astype(np.intp)
        fx, fy = gx - ix, gy - iy                                # position inside the cell, [0, 1)
        base = iy * gwp + ix
        free = ~flat[base] & finite
        r2 = r * r
        for dy in range(-k, k + 1):
            for dx in range(-k, k + 1):
                if (dx == 0 and dy == 0) or max(abs(dx) - 1, 0) ** 2 + max(abs(dy) - 1, 0) ** 2 >= r2:
                    continue
                # distance from the point to the neighbour cell's square, per axis
                ex = (dx - fx) if dx > 0 else ((fx - dx - 1) if dx < 0 else 0.0)
                ey = (dy - fy) if dy > 0 else ((fy - dy - 1) if dy < 0 else 0.0)
                free &= ~(flat[base + (dy * gwp + dx)] & (ex * ex + ey * ey < r2))
        return free

    def segment_free(self, a, b, clearance: float = DEFAULT_CLEARANCE) -> bool:
        """Whether the straight walk from ``a`` (2,) to ``b`` (2,) (metres) stays free with ``clearance``."""
        a = np.asarray(a, np.float64)[:2]
        b = np.asarray(b, np.float64)[:2]
        step = 0.25 * min(self.cell, max(clearance, 0.5 * self.cell))
        n = int(np.ceil(np.linalg.norm(b - a) / step)) + 1
        s = np.linspace(0.0, 1.0, n)[:, None]
        return bool(self.is_free(a + s * (b - a), clearance).all())

    # --------------------------------------------------------------------------------------------
    def free_cells(self) -> np.ndarray:
        """(M, 2) centres (metres) of the cells in the largest connected walkable region
        (centres free with the default clearance); cached."""
        if "free_cells" not in self._cache:
            gh, gw = self.shape
            ys, xs = np.mgrid[0:gh, 0:gw]
            centres = np.stack([xs, ys], -1) * self.cell + np.asarray(self.origin) + 0.5 * self.cell
            ok = self.is_free(centres, DEFAULT_CLEARANCE + 0.02)
            label = _largest_component(ok)
            self._cache["free_cells"] = centres[label]
        return self._cache["free_cells"]

    def sample_free_pose(self, rng: np.random.Generator) -> np.ndarray:
        """A random free pose (3,) float64 ``(x, y, yaw)`` in the largest walkable region, uniform yaw."""
        cells = self.free_cells()
        if len(cells) == 0:
            raise RuntimeError(f"scene seed={self.seed} style={self.style!r} has no free cell")
        for _ in range(20):
            c = cells[rng.integers(len(cells))]
            xy = c + rng.uniform(-0.4, 0.4, 2) * self.cell
            if self.is_free(xy):
                break
        else:
            xy = c
        return np.array([xy[0], xy[1], rng.uniform(-np.pi, np.pi)], dtype=np.float64)

    # --------------------------------------------------------------------------------------------
    def map_image(self, px_per_m: float = 8) -> np.ndarray:
        """Top-down colour map, uint8 (h, w, 3), north (+y) up; see :meth:`world_to_map`.

        Floors show their texture's mean colour, walls their skin's colour (taller walls brighter,
        with a dark outline), water and other solid floors their floor colour, darkened.
        """
        if px_per_m <= 0:
            raise ValueError(f"px_per_m must be > 0, got {px_per_m}")
        fcol = np.stack([mean_colour(s) for s in self.floor_skins])
        wcol = np.stack([np.zeros(3)] + [mean_colour(s) for s in self.wall_skins])
        cell_rgb = fcol[self.floor]                                        # (GH, GW, 3)
        hmax = max(float(self.height.max()), 1e-6)
        shade = 0.65 + 0.35 * (self.height / hmax)[..., None]
        is_wall = self.wall > 0
        cell_rgb = np.where(is_wall[..., None], wcol[self.wall] * shade, cell_rgb)
        cell_rgb = np.where((self.solid & ~is_wall)[..., None], cell_rgb * 0.8, cell_rgb)
        xmin, xmax, ymin, ymax = self.extent
        w = max(1, int(round((xmax - xmin) * px_per_m)))
        h = max(1, int(round((ymax - ymin) * px_per_m)))
        gx = ((np.arange(w) + 0.5) / px_per_m / self.cell).astype(int).clip(0, self.shape[1] - 1)
        gy = (((h - np.arange(h) - 0.5) / px_per_m) / self.cell).astype(int).clip(0, self.shape[0] - 1)
        img = cell_rgb[gy[:, None], gx[None, :]]                          # (h, w, 3)
        # outline walls where they meet free ground
        wall_px = is_wall[gy[:, None], gx[None, :]]
        edge = np.zeros_like(wall_px)
        edge[1:] |= wall_px[1:] != wall_px[:-1]
        edge[:, 1:] |= wall_px[:, 1:] != wall_px[:, :-1]
        img = np.where((edge & wall_px)[..., None], img * 0.45, img)
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def world_to_map(self, xy, px_per_m: float = 8) -> np.ndarray:
        """World points (..., 2) in metres -> :meth:`map_image` pixel coords (..., 2) as (column, row) floats."""
        p = np.asarray(xy, dtype=np.float64)
        if p.shape[-1:] != (2,):
            raise ValueError(f"xy must have shape (..., 2), got {p.shape}")
        xmin, _, _, ymax = self.extent
        return np.stack([(p[..., 0] - xmin) * px_per_m, (ymax - p[..., 1]) * px_per_m], -1)


def _largest_component(ok: np.ndarray) -> np.ndarray:
    """bool (GH, GW) -> bool mask of its largest 4-connected component."""
    gh, gw = ok.shape
    label = np.full(ok.shape, -1, np.int32)
    flat_ok, flat_label = ok.ravel(), label.ravel()
    best, best_size, n = -1, 0, 0
    for start in np.flatnonzero(flat_ok):
        if flat_label[start] >= 0:
            continue
        flat_label[start] = n
        queue, size = deque([start]), 0
        while queue:
            i = queue.popleft()
            size += 1
            y, x = divmod(int(i), gw)
            for j, valid in ((i - gw, y > 0), (i + gw, y < gh - 1), (i - 1, x > 0), (i + 1, x < gw - 1)):
                if valid and flat_ok[j] and flat_label[j] < 0:
                    flat_label[j] = n
                    queue.append(j)
        if size > best_size:
            best, best_size = n, size
        n += 1
    return label == best
