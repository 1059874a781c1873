"""Indoor styles: rooms, museum, warehouse, atrium. Each is ``fn(seed, rng) -> Scene``.

Indoor scenes use 0.5 m cells and a ceiling; walls that reach the ceiling hide everything behind
them, so doors between rooms are real occluders.
"""

from __future__ import annotations

import numpy as np

from camworld.sim.builder import Builder, named
from camworld.sim.textures import Skin, colour_name, hsv

_WALL_PATTERNS = {"stripes_v": "striped", "pinstripe": "pinstriped", "bricks": "brick", "panels": "panelled",
                  "dots": "polka-dot", "diamonds": "diamond-patterned", "plain": "plain", "stripes_h": "banded"}
_FLOOR_PATTERNS = {"planks": "wooden", "tiles": "tiled", "checker": "checkered", "noise": "carpeted",
                   "diamonds": "patterned"}
_DARK_FOG = (0.08, 0.08, 0.1)


def _room_grid(b: Builder, xs, ys, wall_skin_fn, floor_skin_fn, height: float):
    """Rooms on a grid; each room's 1-cell wall ring carries its own skin (so shared walls are 2 cells
    thick and each side shows its room's wallpaper). Returns {(i, j): (x0, y0, x1, y1, wall, floor)}."""
    rooms = {}
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            x0, x1, y0, y1 = xs[i], xs[i + 1], ys[j], ys[j + 1]
            ws, wname = wall_skin_fn(i, j)
            fs = floor_skin_fn(i, j)
            b.block(x0, y0, x1, y1, ws, height)
            b.clear(x0 + 1, y0 + 1, x1 - 1, y1 - 1)
            b.ground(x0, y0, x1, y1, fs)
            rooms[i, j] = (x0, y0, x1, y1, ws, wname)
    return rooms


def _connect(b: Builder, rooms: dict, nx: int, ny: int, door: int, extra: float, reserved: np.ndarray):
    """Open doors (``door`` cells wide) along a random spanning tree of the room grid plus ``extra``
    fraction of the remaining walls; marks door cells (grown by 2) in ``reserved``."""
    rng = b.rng
    edges = [((i, j), (i + 1, j)) for i in range(nx - 1) for j in range(ny)]
    edges += [((i, j), (i, j + 1)) for i in range(nx) for j in range(ny - 1)]
    rng.shuffle(edges)
    parent = {k: k for k in rooms}

    def find(k):
        while parent[k] != k:
            k = parent[k]
        return k

    chosen = []
    for a, c in edges:
        ra, rc = find(a), find(c)
        if ra != rc:
            parent[ra] = rc
            chosen.append((a, c))
        elif rng.random() < extra:
            chosen.append((a, c))
    for a, c in chosen:
        ax0, ay0, ax1, ay1 = rooms[a][:4]
        cx0, cy0, cx1, cy1 = rooms[c][:4]
        if a[0] != c[0]:  # neighbours along x: the wall is at x = ax1 - 1, ax1
            lo, hi = max(ay0, cy0) + 2, min(ay1, cy1) - 2 - door
            y = int(rng.integers(lo, max(lo + 1, hi + 1)))
            b.clear(ax1 - 1, y, ax1 + 1, y + door)
            reserved[max(0, y - 2):y + door + 2, ax1 - 3:ax1 + 3] = True
        else:
            lo, hi = max(ax0, cx0) + 2, min(ax1, cx1) - 2 - door
            x = int(rng.integers(lo, max(lo + 1, hi + 1)))
            b.clear(x, ay1 - 1, x + door, ay1 + 1)
            reserved[ay1 - 3:ay1 + 3, max(0, x - 2):x + door + 2] = True


def _against_walls(b: Builder, room, reserved, items):
    """Place furniture ``items`` [(name, skin, height, length)] along the inside of a room's walls."""
    x0, y0, x1, y1 = room[:4]
    rng = b.rng
    for name, skin, h, length in items:
        for _ in range(12):
            side = int(rng.integers(4))
            if side < 2:  # along a horizontal wall
                x = int(rng.integers(x0 + 1, max(x0 + 2, x1 - 1 - length)))
                y = y0 + 1 if side == 0 else y1 - 2
                rect = (x, y, x + length, y + 1)
            else:
                y = int(rng.integers(y0 + 1, max(y0 + 2, y1 - 1 - length)))
                x = x0 + 1 if side == 2 else x1 - 2
                rect = (x, y, x + 1, y + length)
            if rect[2] > x1 - 1 or rect[3] > y1 - 1 or reserved[rect[1]:rect[3], rect[0]:rect[2]].any():
                continue
            if not b.is_empty(*rect):
                continue
            b.block(*rect, skin, h)
            reserved[rect[1] - 1:rect[3] + 1, rect[0] - 1:rect[2] + 1] = True
            b.landmark(name, *rect)
            break


def _ceiling(rng, light=(0.92, 0.92, 0.88)):
    return Skin("ceiling", "tiles", light, tuple(0.8 * np.asarray(light)), seed=int(rng.integers(1 << 30)))


def rooms(seed: int, rng: np.random.Generator):
    """A house of connected rooms, each with its own wallpaper, floor and furniture."""
    nx, ny = int(rng.integers(3, 5)), int(rng.integers(2, 4))
    # rooms of 6-8.5 m inside: under the paper's limits (>= 1.17 m/s, <= 23 deg/s) the camera's
    # turning radius is about 3 m, so smaller rooms force it to walk backwards much of the time
    xs = np.concatenate([[0], np.cumsum(rng.integers(14, 19, nx))])
    ys = np.concatenate([[0], np.cumsum(rng.integers(14, 19, ny))])
    b = Builder(int(xs[-1]), int(ys[-1]), 0.5, rng)
    ceil_h = 2.8
    hues = rng.permutation(nx * ny) / (nx * ny) + rng.random()

    def wall_skin(i, j):
        hue = hues[i * ny + j]
        c1 = hsv(hue, rng.uniform(0.25, 0.65), rng.uniform(0.6, 0.92))
        c2 = hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.6))
        pat = list(_WALL_PATTERNS)[int(rng.integers(len(_WALL_PATTERNS)))]
        name = f"{colour_name(c1)} {_WALL_PATTERNS[pat]} wallpaper"
        return b.wskin(Skin(name, pat, c1, c2, 16.0, 16.0, seed=int(rng.integers(1 << 30)))), name

    def floor_skin(i, j):
        pat = list(_FLOOR_PATTERNS)[int(rng.integers(len(_FLOOR_PATTERNS)))]
        c1 = b.colour(s=(0.2, 0.6), v=(0.35, 0.8))
        c2 = tuple(0.6 * np.asarray(c1))
        return b.fskin(Skin(f"{colour_name(c1)} {_FLOOR_PATTERNS[pat]} floor", pat, c1, c2, seed=int(rng.integers(1 << 30))))

    rms = _room_grid(b, xs, ys, wall_skin, floor_skin, ceil_h)
    reserved = np.zeros((b.gh, b.gw), bool)
    _connect(b, rms, nx, ny, door=4, extra=0.35, reserved=reserved)
    furniture = [("sofa", "stripes_h", 0.8, 4), ("bookshelf", "shelves", 2.0, 3), ("cabinet", "panels", 1.1, 2),
                 ("bed", "stripes_v", 0.6, 4), ("fireplace", "bricks", 1.3, 3), ("piano", "plain", 1.2, 3)]
    for key, room in rms.items():
        items = []
        for k in rng.permutation(len(furniture))[: int(rng.integers(1, 4))]:
            name, pat, h, ln = furniture[k]
            c1 = b.colour(s=(0.3, 0.8), v=(0.3, 0.8))
            c2 = tuple(0.5 * np.asarray(c1))
            full = named(name, c1)
            items.append((f"a {full}", b.wskin(Skin(full, pat, c1, c2, 16.0, 16.0, seed=int(rng.integers(1 << 30)))), h, ln))
        _against_walls(b, room, reserved, items)
        x0, y0, x1, y1 = room[:4]
        if x1 - x0 >= 13 and y1 - y0 >= 13 and rng.random() < 0.6:  # a table in the middle
            cx, cy = (x0 + x1) // 2 - 1, (y0 + y1) // 2 - 1
            c1 = b.colour(s=(0.3, 0.6), v=(0.3, 0.6))
            tname = named("table", c1)
            b.block(cx, cy, cx + 2, cy + 2, b.wskin(Skin(tname, "planks", c1, tuple(0.6 * np.asarray(c1)))), 0.75)
            b.landmark(f"a {tname}", cx, cy, cx + 2, cy + 2)
        b.rooms.append(f"the room with {room[5]}")
    return b.build(seed, "rooms", ceiling=ceil_h, ceiling_skin=_ceiling(rng), fog_rgb=_DARK_FOG, fog_dist=30.0)


def museum(seed: int, rng: np.random.Generator):
    """Exhibition halls joined by wide openings, paintings on the walls, statues on pedestals."""
    nx, ny = int(rng.integers(2, 4)), 2
    xs = np.concatenate([[0], np.cumsum(rng.integers(16, 23, nx))])
    ys = np.concatenate([[0], np.cumsum(rng.integers(16, 21, ny))])
    b = Builder(int(xs[-1]), int(ys[-1]), 0.5, rng)
    ceil_h = 4.5
    hall_names = []

    def wall_skin(i, j):
        c1 = hsv(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.55, 0.9))
        name = f"{colour_name(c1)} gallery walls"
        hall_names.append(name)
        return b.wskin(Skin(name, "plain", c1, tuple(0.85 * np.asarray(c1)), seed=int(rng.integers(1 << 30)))), name

    marble = b.fskin(Skin("white marble floor", "tiles", (0.88, 0.86, 0.82), (0.6, 0.58, 0.55)))
    wood = b.fskin(Skin("parquet floor", "planks", (0.62, 0.42, 0.25), (0.4, 0.26, 0.14)))
    dark = b.fskin(Skin("black and white checkered floor", "checker", (0.9, 0.9, 0.9), (0.12, 0.12, 0.12)))
    rms = _room_grid(b, xs, ys, wall_skin, lambda i, j: [marble, wood, dark][int(rng.integers(3))], ceil_h)
    reserved = np.zeros((b.gh, b.gw), bool)
    _connect(b, rms, nx, ny, door=6, extra=0.5, reserved=reserved)
    n_paint = 0
    for key, room in rms.items():
        x0, y0, x1, y1 = room[:4]
        frame = (0.75, 0.6, 0.2) if rng.random() < 0.5 else (0.15, 0.1, 0.08)
        for side in range(4):  # paintings: 2-cell spans (1 m) aligned to the texture period
            span = range(x0 + 2, x1 - 3, 4) if side < 2 else range(y0 + 2, y1 - 3, 4)
            for p in span:
                p = p + ((p + 1) % 2)
                if rng.random() < 0.35:
                    continue
                rect = ((p, y0, p + 2, y0 + 1), (p, y1 - 1, p + 2, y1),
                        (x0, p, x0 + 1, p + 2), (x1 - 1, p, x1, p + 2))[side]
                if not b.solid[rect[1]:rect[3], rect[0]:rect[2]].all():
                    continue  # an opening
                n_paint += 1
                skin = Skin(f"painting {n_paint}", "painting", b.wall_skins[room[4] - 1].c1, frame,
                            hscale=16.0, vscale=16.0 / 3.2, seed=int(rng.integers(1 << 30)))
                b.block(*rect, b.wskin(skin), ceil_h)
        # exhibits in the middle of the hall
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        kind = int(rng.integers(3))
        if kind == 0:
            col = b.colour(s=(0.0, 0.2), v=(0.75, 0.95))
            sk = b.wskin(Skin("marble statue", "noise", col, tuple(0.7 * np.asarray(col)), 16.0, 8.0))
            for dx, dy in ((-3, -3), (2, -3), (-3, 2), (2, 2)):
                b.block(cx + dx, cy + dy, cx + dx + 1, cy + dy + 1, sk, 1.9)
            b.landmark("four marble statues", cx - 3, cy - 3, cx + 3, cy + 3)
        elif kind == 1:
            col = b.colour(s=(0.5, 0.9), v=(0.5, 0.9))
            name = named("sculpture", col)
            b.block(cx - 1, cy - 1, cx + 1, cy + 1, b.wskin(Skin(name, "diamonds", col, (0.1, 0.1, 0.1))), 3.0)
            b.landmark(f"a tall {name}", cx - 1, cy - 1, cx + 1, cy + 1)
        else:
            sk = b.wskin(Skin("glass display case", "tiles", (0.6, 0.75, 0.8), (0.3, 0.35, 0.4)))
            b.block(cx - 3, cy - 1, cx + 3, cy + 1, sk, 1.0)
            b.landmark("a glass display case", cx - 3, cy - 1, cx + 3, cy + 1)
    b.rooms.extend(f"a hall with {n}" for n in hall_names)
    return b.build(seed, "museum", ceiling=ceil_h, ceiling_skin=_ceiling(rng, (0.97, 0.96, 0.92)),
                   fog_rgb=(0.15, 0.14, 0.13), fog_dist=40.0)


def warehouse(seed: int, rng: np.random.Generator):
    """One big hall with rows of coloured shelving, crate stacks, pillars and loading doors."""
    gw, gh = int(rng.integers(60, 76)), int(rng.integers(46, 60))
    b = Builder(gw, gh, 0.5, rng)
    ceil_h = 7.0
    metal = b.colour(s=(0.1, 0.4), v=(0.45, 0.7))
    outer = b.wskin(Skin(named("corrugated metal wall", metal), "stripes_v", metal, tuple(0.75 * np.asarray(metal))))
    b.border(outer, ceil_h)
    b.ground(0, 0, gw, gh, b.fskin(Skin("grey concrete floor", "noise", (0.55, 0.55, 0.53), (0.4, 0.4, 0.4))))
    lane = b.fskin(Skin("yellow-striped floor", "stripes_v", (0.55, 0.55, 0.53), (0.9, 0.75, 0.1)))
    door = b.wskin(Skin("yellow and black loading door", "stripes_h", (0.9, 0.75, 0.1), (0.1, 0.1, 0.1), 8, 4))
    for k in range(int(rng.integers(2, 5))):  # loading doors on the long walls
        x = int(rng.integers(4, gw - 10))
        y = 0 if k % 2 == 0 else gh - 1
        b.block(x, y, x + 6, y + 1, door, ceil_h)
        b.landmark("a yellow and black loading door", x, y, x + 6, y + 1)
    # shelving rows along x with 4-cell aisles, a cross aisle in the middle
    y, row = 5, 0
    cross = gw // 2 + int(rng.integers(-6, 6))
    while y + 2 < gh - 5:
        col = hsv(rng.random(), rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.9))
        name = named("shelving", col)
        sk = b.wskin(Skin(name, "shelves", col, (0.2, 0.2, 0.22), 8.0, 16 / 3.5, seed=int(rng.integers(1 << 30))))
        for xa, xb in ((5, cross - 3), (cross + 3, gw - 5)):
            if xb - xa >= 4:
                b.block(xa, y, xb, y + 2, sk, 3.5)
        b.landmark(f"a row of {name}", 5, y, gw - 5, y + 2)
        b.rooms.append(f"the aisle by the {name}")
        y += 2 + int(rng.integers(4, 7))
        row += 1
    b.ground(cross - 3, 1, cross + 3, gh - 1, lane)
    # crates in the free band along the walls
    crate = b.wskin(Skin("stack of wooden crates", "crates", (0.72, 0.55, 0.32), (0.45, 0.3, 0.15), 16, 16))
    b.scatter(int(rng.integers(4, 9)), (2, 3), lambda: crate, lambda: float(rng.choice([1.0, 1.5, 2.0])),
              margin=2, name_fn=lambda: "a stack of wooden crates")
    pillar = b.wskin(Skin("concrete pillar", "noise", (0.7, 0.7, 0.68), (0.5, 0.5, 0.5)))
    b.scatter(int(rng.integers(2, 6)), (1, 1), lambda: pillar, lambda: ceil_h, margin=2)
    return b.build(seed, "warehouse", ceiling=ceil_h,
                   ceiling_skin=Skin("steel roof", "grid", (0.35, 0.36, 0.38), (0.15, 0.15, 0.16)),
                   fog_rgb=(0.12, 0.12, 0.12), fog_dist=35.0)


def atrium(seed: int, rng: np.random.Generator):
    """A mall atrium: shop fronts all around, a fountain, planters, pillars and a kiosk."""
    gw, gh = int(rng.integers(64, 78)), int(rng.integers(50, 62))
    b = Builder(gw, gh, 0.5, rng)
    ceil_h = 10.0
    b.ground(0, 0, gw, gh, b.fskin(Skin("beige marble floor", "tiles", (0.86, 0.8, 0.66), (0.6, 0.55, 0.45))))
    # shop fronts: spans of the border ring, each its own colours; sign colour names the shop
    shops = 0
    for side in range(4):
        length = gw if side < 2 else gh
        p = 0
        while p < length:
            w = min(int(rng.integers(7, 13)), length - p)
            sign = hsv(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.7, 1.0))
            frame = b.colour(s=(0.0, 0.3), v=(0.2, 0.9))
            name = f"shop with a {colour_name(sign)} sign"
            sk = b.wskin(Skin(name, "shop", frame, sign, 8.0, 16.0 / 4.0, seed=int(rng.integers(1 << 30))))
            rect = ((p, 0, p + w, 1), (p, gh - 1, p + w, gh), (0, p, 1, p + w), (gw - 1, p, gw, p + w))[side]
            b.block(*rect, sk, ceil_h)
            if w >= 7:
                b.landmark(f"a {name}", *rect)
                shops += 1
            p += w
    # fountain in the middle: a low stone rim around water
    cx, cy = gw // 2 + int(rng.integers(-4, 5)), gh // 2 + int(rng.integers(-3, 4))
    rim = b.wskin(Skin("stone fountain", "cobbles", (0.75, 0.75, 0.78), (0.5, 0.5, 0.55)))
    water = b.fskin(Skin("water", "ripples", (0.2, 0.45, 0.75), (0.5, 0.75, 0.95)))
    r = int(rng.integers(3, 5))
    b.block(cx - r, cy - r, cx + r, cy + r, rim, 0.7)
    b.clear(cx - r + 1, cy - r + 1, cx + r - 1, cy + r - 1)
    b.ground(cx - r + 1, cy - r + 1, cx + r - 1, cy + r - 1, water, solid=True)
    b.landmark("a fountain", cx - r, cy - r, cx + r, cy + r)
    # pillars on a ring, planters, a kiosk
    pillar = b.wskin(Skin("white pillar", "stripes_v", (0.92, 0.92, 0.9), (0.8, 0.8, 0.78)))
    for a in np.linspace(0, 2 * np.pi, 8, endpoint=False) + rng.uniform(0, 1):
        px, py = int(cx + (r + 7) * np.cos(a)), int(cy + (r + 6) * np.sin(a))
        if b.is_empty(px, py, px + 2, py + 2, 2):
            b.block(px, py, px + 2, py + 2, pillar, ceil_h)
    plant = b.wskin(Skin("planter with shrubs", "foliage", (0.2, 0.55, 0.2), (0.1, 0.3, 0.1)))
    b.scatter(int(rng.integers(3, 7)), (2, 3), lambda: plant, lambda: 1.1, margin=3, name_fn=lambda: "a planter with shrubs")
    kc = b.colour(s=(0.6, 0.9), v=(0.7, 1.0))
    kname = named("kiosk", kc)
    b.scatter(1, (3, 4), lambda: b.wskin(Skin(kname, "stripes_v", kc, (0.95, 0.95, 0.95))), lambda: 2.6, margin=3,
              name_fn=lambda: f"a {kname}")
    b.rooms.append("the atrium")
    return b.build(seed, "atrium", ceiling=ceil_h,
                   ceiling_skin=Skin("glass skylight", "grid", (0.75, 0.88, 0.97), (0.35, 0.4, 0.45)),
                   fog_rgb=(0.55, 0.55, 0.55), fog_dist=60.0)
