"""Outdoor styles: city, countryside, forest, desert and the stylised neon and candy worlds.

Outdoor scenes use 1 m cells and a sky panorama; blocks have varied heights, so taller things show
above nearer, lower ones. A solid ring (buildings, trees, cliffs) encloses the walkable area.
"""

from __future__ import annotations

import numpy as np

from camworld.sim.builder import Builder, named
from camworld.sim.textures import Skin, Sky, colour_name, hsv


def _sky(rng, top, horizon, **kw) -> Sky:
    return Sky(top=top, horizon=horizon, sun_az=float(rng.uniform(0, 2 * np.pi)), seed=int(rng.integers(1 << 30)), **kw)


def _tree_skin(b: Builder, foliage, bark=(0.35, 0.22, 0.12), height=8.0, kind="tree"):
    return b.wskin(Skin(named(kind, foliage), "tree", foliage, bark, 8.0, 15.9 / height, seed=int(b.rng.integers(1 << 30))))


def _ring_of(b: Builder, skin_fn, height_fn, thickness=2, seg=(3, 8)):
    """Enclose the grid with a ring of segments of varied skin and height."""
    rng = b.rng
    for side in range(4):
        length = b.gw if side < 2 else b.gh
        p = 0
        while p < length:
            w = min(int(rng.integers(seg[0], seg[1] + 1)), length - p)
            t = thickness
            rect = ((p, 0, p + w, t), (p, b.gh - t, p + w, b.gh), (0, p, t, p + w), (b.gw - t, p, b.gw, p + w))[side]
            b.block(*rect, skin_fn(), height_fn())
            p += w


def city(seed: int, rng: np.random.Generator):
    """Streets on a grid between blocks of buildings of many heights and colours; one block is a plaza."""
    nbx, nby = int(rng.integers(3, 5)), int(rng.integers(3, 5))
    bw, bh = rng.integers(9, 15, nbx), rng.integers(9, 15, nby)
    street = int(rng.integers(6, 9))
    ring = 3
    gw = int(bw.sum() + (nbx + 1) * street + 2 * ring)
    gh = int(bh.sum() + (nby + 1) * street + 2 * ring)
    b = Builder(gw, gh, 1.0, rng)
    asphalt = b.fskin(Skin("asphalt road", "noise", (0.25, 0.25, 0.27), (0.35, 0.35, 0.36)))
    walk = b.fskin(Skin("paved sidewalk", "tiles", (0.65, 0.63, 0.6), (0.45, 0.44, 0.42)))
    zebra = b.fskin(Skin("zebra crossing", "stripes_v", (0.25, 0.25, 0.27), (0.92, 0.92, 0.9)))
    grass = b.fskin(Skin("park lawn", "grass", (0.25, 0.55, 0.2), (0.35, 0.7, 0.25)))
    b.ground(0, 0, gw, gh, asphalt)

    def building_skin(tall: bool):
        facade = b.colour(s=(0.1, 0.7), v=(0.45, 0.95))
        glass = hsv(rng.uniform(0.5, 0.7), rng.uniform(0.2, 0.6), rng.uniform(0.15, 0.45))
        if not tall and rng.random() < 0.35:
            return Skin(named("brick building", facade), "bricks", facade, tuple(0.55 * np.asarray(facade)), 4.0, 5.0)
        kind = "glass tower" if tall else "building"
        return Skin(named(kind, facade), "windows", facade, glass, 4.0, 16.0 / 3.5, seed=int(rng.integers(1 << 30)))

    xs = ring + street + np.concatenate([[0], np.cumsum(bw + street)])
    ys = ring + street + np.concatenate([[0], np.cumsum(bh + street)])
    plaza = (int(rng.integers(nbx)), int(rng.integers(nby)))
    for i in range(nbx):
        for j in range(nby):
            x0, y0, x1, y1 = int(xs[i]), int(ys[j]), int(xs[i] + bw[i]), int(ys[j] + bh[j])
            b.ground(x0 - 1, y0 - 1, x1 + 1, y1 + 1, walk)
            if (i, j) == plaza:
                b.ground(x0, y0, x1, y1, grass)
                sc = b.colour(s=(0.0, 0.3), v=(0.6, 0.9))
                cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
                statue = Skin(named("statue", sc), "noise", sc, tuple(0.6 * np.asarray(sc)), 8, 2)
                b.block(cx - 1, cy - 1, cx + 1, cy + 1, b.wskin(statue), 4.5)
                b.landmark(f"a {named('statue', sc)} in a park", cx - 1, cy - 1, cx + 1, cy + 1)
                tree = _tree_skin(b, (0.2, 0.5, 0.15), height=6.0)
                for dx, dy in ((x0 + 1, y0 + 1), (x1 - 2, y0 + 1), (x0 + 1, y1 - 2), (x1 - 2, y1 - 2)):
                    b.block(dx, dy, dx + 1, dy + 1, tree, 6.0)
                b.rooms.append("the park")
                continue
            # split the block into 1-4 buildings
            parts = [(x0, y0, x1, y1)]
            for _ in range(int(rng.integers(0, 3))):
                k = int(rng.integers(len(parts)))
                px0, py0, px1, py1 = parts.pop(k)
                if px1 - px0 >= py1 - py0 and px1 - px0 >= 6:
                    m = int(rng.integers(px0 + 3, px1 - 2))
                    parts += [(px0, py0, m, py1), (m, py0, px1, py1)]
                elif py1 - py0 >= 6:
                    m = int(rng.integers(py0 + 3, py1 - 2))
                    parts += [(px0, py0, px1, m), (px0, m, px1, py1)]
                else:
                    parts.append((px0, py0, px1, py1))
            for rect in parts:
                h = float(rng.choice([rng.uniform(5, 12), rng.uniform(12, 22), rng.uniform(22, 40)], p=[0.45, 0.35, 0.2]))
                skin = building_skin(h > 22)
                b.block(*rect, b.wskin(skin), h)
                if h > 20 or rng.random() < 0.3:
                    b.landmark(("a tall " if h > 20 else "a ") + skin.name, *rect)
    # zebra crossings next to every intersection, street trees on some sidewalks
    for i in range(nbx + 1):
        for j in range(nby + 1):
            ix, iy = int(xs[i] - street), int(ys[j] - street)
            if j > 0:
                b.ground(ix + 1, iy - 2, ix + street - 1, iy, zebra)
    b.rooms.extend(["the street", "a crossroads", "the sidewalk"])
    _ring_of(b, lambda: b.wskin(building_skin(rng.random() < 0.3)), lambda: float(rng.uniform(8, 35)), ring, (5, 12))
    sky = _sky(rng, (0.25, 0.45, 0.85), (0.75, 0.85, 0.95), clouds=0.5)
    return b.build(seed, "city", sky=sky, fog_rgb=sky.horizon, fog_dist=45.0)


def countryside(seed: int, rng: np.random.Generator):
    """Open fields with distinct landmarks: barn, silo, windmill, farmhouse, pond, stone walls, trees."""
    gw, gh = int(rng.integers(60, 76)), int(rng.integers(60, 76))
    b = Builder(gw, gh, 1.0, rng)
    b.ground(0, 0, gw, gh, b.fskin(Skin("green meadow", "grass", (0.3, 0.6, 0.2), (0.45, 0.72, 0.25))))
    dirt = b.fskin(Skin("dirt track", "noise", (0.55, 0.42, 0.28), (0.45, 0.33, 0.2)))
    water = b.fskin(Skin("pond", "ripples", (0.2, 0.4, 0.65), (0.45, 0.65, 0.85)))
    # dirt tracks across the fields
    for _ in range(2):
        if rng.random() < 0.5:
            y = int(rng.integers(8, gh - 8))
            b.ground(0, y, gw, y + 2, dirt)
        else:
            x = int(rng.integers(8, gw - 8))
            b.ground(x, 0, x + 2, gh, dirt)
    _ring_of(b, lambda: _tree_skin(b, hsv(rng.uniform(0.22, 0.35), 0.6, rng.uniform(0.3, 0.55)), height=9.0),
             lambda: float(rng.uniform(6, 10)), 2, (2, 5))
    things = [
        ("red barn", (7, 9), "planks", (0.7, 0.12, 0.1), (0.45, 0.08, 0.06), 6.0, 8.0, 16 / 6.0),
        ("grey silo", (2, 3), "stripes_h", (0.75, 0.75, 0.78), (0.55, 0.55, 0.6), 13.0, 8.0, 2.0),
        ("white windmill", (2, 2), "stripes_h", (0.95, 0.95, 0.92), (0.35, 0.2, 0.12), 15.0, 8.0, 1.2),
        ("white farmhouse", (5, 7), "windows", (0.93, 0.9, 0.82), (0.25, 0.3, 0.4), 5.0, 4.0, 16 / 3.0),
        ("stone tower", (3, 3), "bricks", (0.6, 0.58, 0.52), (0.35, 0.33, 0.3), 10.0, 6.0, 6.0),
    ]
    for name, size, pat, c1, c2, h, hs, vs in things:
        sk = b.wskin(Skin(name, pat, c1, c2, hs, vs))
        b.scatter(1, size, lambda: sk, lambda: h, margin=4, name_fn=lambda: f"a {name}")
    # a pond (solid water, no wall)
    for _ in range(20):
        w, h = int(rng.integers(6, 11)), int(rng.integers(5, 9))
        x0, y0 = int(rng.integers(4, gw - w - 4)), int(rng.integers(4, gh - h - 4))
        if b.is_empty(x0, y0, x0 + w, y0 + h, 3):
            b.ground(x0, y0, x0 + w, y0 + h, water, solid=True)
            b.landmark("a pond", x0, y0, x0 + w, y0 + h)
            break
    stone = b.wskin(Skin("dry stone wall", "cobbles", (0.6, 0.58, 0.55), (0.4, 0.38, 0.35), 8, 8))
    for _ in range(int(rng.integers(2, 5))):  # low walls with gaps: you can see over them
        x0, y0 = int(rng.integers(5, gw - 20)), int(rng.integers(5, gh - 20))
        horiz = rng.random() < 0.5
        length = int(rng.integers(8, 16))
        for k in range(length):
            if k % 6 in (3, 4):
                continue
            x, y = (x0 + k, y0) if horiz else (x0, y0 + k)
            if b.is_empty(x, y, x + 1, y + 1, 1):
                b.block(x, y, x + 1, y + 1, stone, 1.0)
    hay = b.wskin(Skin("hay bale", "stripes_h", (0.9, 0.78, 0.35), (0.75, 0.62, 0.25), 8, 16))
    b.scatter(int(rng.integers(3, 7)), (1, 2), lambda: hay, lambda: 1.2, margin=2)
    trees = [_tree_skin(b, hsv(rng.uniform(0.2, 0.36), rng.uniform(0.5, 0.8), rng.uniform(0.3, 0.6))) for _ in range(3)]
    b.scatter(int(rng.integers(10, 20)), (1, 1), lambda: trees[int(rng.integers(3))], lambda: float(rng.uniform(5, 9)), margin=2)
    b.rooms.extend(["the meadow", "the fields", "the farmyard"])
    sky = _sky(rng, (0.3, 0.55, 0.9), (0.8, 0.88, 0.95), clouds=0.6, mountains=float(rng.uniform(4, 8)),
               mountain_rgb=(0.45, 0.55, 0.65))
    return b.build(seed, "countryside", sky=sky, fog_rgb=sky.horizon, fog_dist=45.0)


def forest(seed: int, rng: np.random.Generator):
    """Dense woods whose foliage changes by region, with a clearing, a cabin, rocks and a watchtower."""
    gw, gh = int(rng.integers(56, 70)), int(rng.integers(56, 70))
    b = Builder(gw, gh, 1.0, rng)
    b.ground(0, 0, gw, gh, b.fskin(Skin("leaf litter", "leaves", (0.35, 0.28, 0.15), (0.3, 0.38, 0.15))))
    moss = b.fskin(Skin("mossy ground", "grass", (0.2, 0.4, 0.15), (0.3, 0.5, 0.2)))
    path = b.fskin(Skin("forest path", "noise", (0.5, 0.4, 0.28), (0.42, 0.33, 0.22)))
    kinds = [("pine", (0.1, 0.32, 0.15)), ("oak", (0.25, 0.5, 0.15)), ("autumn maple", (0.85, 0.4, 0.1)),
             ("birch", (0.75, 0.75, 0.2)), ("red maple", (0.7, 0.15, 0.1))]
    order = rng.permutation(len(kinds))[:3]
    centres = rng.uniform([0, 0], [gw, gh], (3, 2))
    zone_skins = [_tree_skin(b, kinds[k][1], (0.9, 0.88, 0.82) if kinds[k][0] == "birch" else (0.35, 0.22, 0.12),
                             12.0, f"{kinds[k][0]} tree") for k in order]
    # clearing with a cabin and a stone circle
    cx, cy = int(rng.integers(16, gw - 16)), int(rng.integers(16, gh - 16))
    b.ground(cx - 8, cy - 8, cx + 8, cy + 8, moss)
    cabin = b.wskin(Skin("log cabin", "planks", (0.5, 0.32, 0.18), (0.3, 0.18, 0.1), 8, 4))
    b.block(cx - 3, cy + 2, cx + 2, cy + 6, cabin, 4.0)
    b.landmark("a log cabin", cx - 3, cy + 2, cx + 2, cy + 6)
    stone = b.wskin(Skin("standing stone", "noise", (0.55, 0.55, 0.58), (0.35, 0.35, 0.4), 8, 4))
    for a in np.linspace(0, 2 * np.pi, 6, endpoint=False):
        sx, sy = int(cx + 4 * np.cos(a)) - 1, int(cy - 3 + 3 * np.sin(a))
        if b.is_empty(sx, sy, sx + 1, sy + 1, 0):
            b.block(sx, sy, sx + 1, sy + 1, stone, 2.2)
    b.landmark("a circle of standing stones", cx - 5, cy - 6, cx + 3, cy)
    # a winding path
    px, py = 2, int(rng.integers(10, gh - 10))
    while px < gw - 2:
        b.ground(px, py - 1, px + 2, py + 2, path)
        px += 1
        py = int(np.clip(py + rng.integers(-1, 2), 4, gh - 5))
    tower = b.wskin(Skin("wooden watchtower", "crates", (0.55, 0.38, 0.2), (0.3, 0.2, 0.1), 8, 2))
    b.scatter(1, (2, 2), lambda: tower, lambda: 14.0, margin=3, name_fn=lambda: "a wooden watchtower")
    rock = b.wskin(Skin("mossy boulder", "noise", (0.45, 0.47, 0.42), (0.25, 0.35, 0.2), 8, 8))
    b.scatter(int(rng.integers(4, 9)), (1, 2), lambda: rock, lambda: float(rng.uniform(0.8, 1.6)), margin=2)
    _ring_of(b, lambda: zone_skins[int(rng.integers(3))], lambda: float(rng.uniform(10, 16)), 2, (1, 3))
    # trees: the zone of the nearest centre picks the species; keep one free cell around each
    pts = rng.uniform([2, 2], [gw - 3, gh - 3], (int(gw * gh * 0.09), 2)).astype(int)
    for x, y in pts:
        if (path == b.floor[y, x]) or abs(x - cx) < 9 and abs(y - cy) < 9:
            continue
        if b.is_empty(x, y, x + 1, y + 1, 1):
            z = int(np.argmin(((centres - (x, y)) ** 2).sum(1)))
            b.block(x, y, x + 1, y + 1, zone_skins[z], float(rng.uniform(9, 16)))
    b.rooms.extend([f"a stand of {kinds[k][0]} trees" for k in order] + ["the clearing"])
    sky = _sky(rng, (0.35, 0.55, 0.8), (0.75, 0.82, 0.85), clouds=0.4, mountains=float(rng.uniform(3, 6)),
               mountain_rgb=(0.4, 0.5, 0.55))
    return b.build(seed, "forest", sky=sky, fog_rgb=(0.55, 0.62, 0.6), fog_dist=25.0)


def desert(seed: int, rng: np.random.Generator):
    """Sand under a bright sky: striped mesas, a stepped pyramid, an obelisk, ruins, cacti and rocks."""
    gw, gh = int(rng.integers(64, 80)), int(rng.integers(64, 80))
    b = Builder(gw, gh, 1.0, rng)
    sand_c = hsv(rng.uniform(0.08, 0.12), rng.uniform(0.35, 0.55), rng.uniform(0.8, 0.92))
    b.ground(0, 0, gw, gh, b.fskin(Skin(f"{colour_name(sand_c)} sand", "ripples", sand_c, tuple(0.85 * np.asarray(sand_c)))))
    mesa_cols = [hsv(rng.uniform(0.0, 0.08), rng.uniform(0.5, 0.8), rng.uniform(0.55, 0.8)) for _ in range(3)]
    mesas = [b.wskin(Skin(named("striped mesa", c), "strata", c, tuple(0.6 * np.asarray(c)), 4, 1.0,
                          seed=int(rng.integers(1 << 30)))) for c in mesa_cols]
    _ring_of(b, lambda: mesas[int(rng.integers(3))], lambda: float(rng.uniform(6, 18)), 3, (4, 10))
    b.scatter(int(rng.integers(2, 5)), (4, 8), lambda: mesas[int(rng.integers(3))], lambda: float(rng.uniform(8, 20)),
              margin=4, name_fn=lambda: "a striped mesa")
    stone = (0.85, 0.75, 0.5)
    pyr = b.wskin(Skin("sandstone pyramid", "bricks", stone, (0.6, 0.5, 0.3), 4, 4))
    for _ in range(30):
        x0, y0 = int(rng.integers(6, gw - 18)), int(rng.integers(6, gh - 18))
        if b.is_empty(x0, y0, x0 + 12, y0 + 12, 3):
            for k in range(6):
                b.block(x0 + k, y0 + k, x0 + 12 - k, y0 + 12 - k, pyr, 2.5 * (k + 1))
            b.landmark("a stepped pyramid", x0, y0, x0 + 12, y0 + 12)
            break
    ob = b.wskin(Skin("black obelisk", "stripes_h", (0.12, 0.1, 0.1), (0.75, 0.6, 0.2), 8, 1.0))
    b.scatter(1, (1, 1), lambda: ob, lambda: 14.0, margin=3, name_fn=lambda: "a black obelisk")
    ruin = b.wskin(Skin("crumbling ruin wall", "bricks", (0.8, 0.68, 0.45), (0.55, 0.45, 0.3), 6, 6))
    for _ in range(int(rng.integers(2, 4))):
        x0, y0 = int(rng.integers(6, gw - 14)), int(rng.integers(6, gh - 14))
        if b.is_empty(x0, y0, x0 + 8, y0 + 8, 2):
            for k in range(8):
                if k not in (3, 4):
                    b.block(x0 + k, y0, x0 + k + 1, y0 + 1, ruin, float(rng.uniform(0.8, 2.5)))
                    b.block(x0, y0 + k, x0 + 1, y0 + k + 1, ruin, float(rng.uniform(0.8, 2.5)))
            b.landmark("crumbling ruins", x0, y0, x0 + 8, y0 + 8)
    cactus = b.wskin(Skin("cactus", "cactus", (0.25, 0.55, 0.25), (0.15, 0.4, 0.18), 8, 8))
    b.scatter(int(rng.integers(8, 16)), (1, 1), lambda: cactus, lambda: float(rng.uniform(2.0, 3.5)), margin=2)
    rock = b.wskin(Skin("red rock", "noise", (0.6, 0.35, 0.25), (0.45, 0.25, 0.18), 8, 8))
    b.scatter(int(rng.integers(4, 8)), (1, 2), lambda: rock, lambda: float(rng.uniform(0.7, 1.8)), margin=2)
    b.rooms.extend(["the dunes", "the open desert"])
    sky = _sky(rng, (0.2, 0.45, 0.85), (0.9, 0.88, 0.78), clouds=0.1, mountains=float(rng.uniform(3, 6)),
               mountain_rgb=(0.7, 0.55, 0.45))
    return b.build(seed, "desert", sky=sky, fog_rgb=sky.horizon, fog_dist=60.0)


def _maze(b: Builder, nx: int, ny: int, corridor: int, wall_fn, height_fn, extra: float):
    """Recursive-backtracker maze of ``corridor``-cell passages and 1-cell walls, plus ``extra`` loops."""
    rng = b.rng
    step = corridor + 1
    for i in range(nx + 1):
        b.block(i * step, 0, i * step + 1, ny * step + 1, wall_fn(i * step, 0), height_fn())
    for j in range(ny + 1):
        b.block(0, j * step, nx * step + 1, j * step + 1, wall_fn(0, j * step), height_fn())
    for j in range(ny):  # recolour wall runs by region
        for i in range(nx):
            b.wall[j * step:(j + 1) * step + 1, i * step] = np.where(
                b.wall[j * step:(j + 1) * step + 1, i * step] > 0, wall_fn(i * step, j * step), 0)
    seen = np.zeros((ny, nx), bool)
    stack = [(int(rng.integers(nx)), int(rng.integers(ny)))]
    seen[stack[0][1], stack[0][0]] = True
    while stack:
        x, y = stack[-1]
        nbrs = [(x + dx, y + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
                if 0 <= x + dx < nx and 0 <= y + dy < ny and not seen[y + dy, x + dx]]
        if not nbrs:
            stack.pop()
            continue
        nx_, ny_ = nbrs[int(rng.integers(len(nbrs)))]
        seen[ny_, nx_] = True
        _open(b, x, y, nx_, ny_, step, corridor)
        stack.append((nx_, ny_))
    for _ in range(int(extra * nx * ny)):
        x, y = int(rng.integers(nx - 1)), int(rng.integers(ny))
        _open(b, x, y, x + 1, y, step, corridor)


def _open(b, x, y, x2, y2, step, corridor):
    if x2 != x:
        wx = max(x, x2) * step
        b.clear(wx, y * step + 1, wx + 1, y * step + 1 + corridor)
    else:
        wy = max(y, y2) * step
        b.clear(x * step + 1, wy, x * step + 1 + corridor, wy + 1)


def neon(seed: int, rng: np.random.Generator):
    """Stylised: a night maze of dark walls with glowing stripes, a glowing grid floor and a starry sky."""
    nx, ny, corridor = int(rng.integers(6, 9)), int(rng.integers(6, 9)), 5
    step = corridor + 1
    b = Builder(nx * step + 1, ny * step + 1, 1.0, rng)
    b.ground(0, 0, b.gw, b.gh, b.fskin(Skin("glowing cyan grid floor", "grid", (0.03, 0.03, 0.07), (0.1, 0.9, 0.95))))
    glow = [(0.95, 0.1, 0.85), (0.1, 0.9, 0.95), (0.6, 0.95, 0.15), (1.0, 0.55, 0.1)]
    skins = [b.wskin(Skin(f"dark wall with {colour_name(c)} neon stripes", "neon", (0.06, 0.05, 0.1), c, 8, 3.0))
             for c in glow]
    order = rng.permutation(4)

    def wall_fn(x, y):
        return skins[order[(2 * x) // b.gw + 2 * ((2 * y) // b.gh)]]

    _maze(b, nx, ny, corridor, wall_fn, lambda: float(rng.uniform(3.0, 6.0)), extra=0.15)
    for _ in range(int(rng.integers(3, 6))):  # glowing pillars in corridor centres, tall landmarks
        i, j = int(rng.integers(nx)), int(rng.integers(ny))
        c = glow[int(rng.integers(4))]
        x, y = i * step + step // 2, j * step + step // 2
        name = f"glowing {colour_name(c)} pillar"
        b.block(x, y, x + 1, y + 1, b.wskin(Skin(name, "stripes_h", c, (1.0, 1.0, 1.0), 8, 2.0)), 12.0)
        b.landmark(f"a {name}", x, y, x + 1, y + 1)
    b.rooms.extend(["a neon corridor", "the glowing maze"])
    sky = _sky(rng, (0.05, 0.0, 0.12), (0.45, 0.08, 0.4), clouds=0.0, stars=True, sun=(0.95, 0.9, 1.0))
    return b.build(seed, "neon", sky=sky, fog_rgb=(0.2, 0.03, 0.2), fog_dist=25.0)


def candy(seed: int, rng: np.random.Generator):
    """Stylised: a pastel checkerboard land of candy-striped pillars, lollipops and gumdrops."""
    gw, gh = int(rng.integers(56, 72)), int(rng.integers(56, 72))
    b = Builder(gw, gh, 1.0, rng)
    a, c = hsv(rng.random(), 0.35, 0.97), hsv(rng.random(), 0.3, 0.9)
    b.ground(0, 0, gw, gh, b.fskin(Skin(f"{colour_name(a)} and {colour_name(c)} checkerboard", "checker", a, c)))
    wafer = b.wskin(Skin("wafer wall", "checker", (0.85, 0.68, 0.42), (0.65, 0.45, 0.25), 4, 4))
    b.border(wafer, 5.0, 2)
    for _ in range(int(rng.integers(8, 15))):
        col = hsv(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.8, 1.0))
        name = f"{colour_name(col)} candy-striped pillar"
        sk = b.wskin(Skin(name, "stripes_h", col, (0.98, 0.98, 0.98), 8, 4))
        b.scatter(1, (1, 3), lambda: sk, lambda: float(rng.uniform(3, 14)), margin=3, name_fn=lambda: f"a {name}")
    for _ in range(int(rng.integers(4, 8))):
        col = hsv(rng.random(), 0.8, 1.0)
        sk = b.wskin(Skin(named("lollipop", col), "dots", col, (1.0, 1.0, 1.0), 8, 16 / 7.0))
        b.scatter(1, (1, 1), lambda: sk, lambda: 7.0, margin=2, name_fn=lambda: f"a giant {named('lollipop', col)}")
    gum = [b.wskin(Skin(named("gumdrop", col), "plain", col, (1.0, 1.0, 1.0))) for col in
           (hsv(rng.random(), 0.8, 0.95) for _ in range(3))]
    b.scatter(int(rng.integers(6, 12)), (1, 2), lambda: gum[int(rng.integers(3))], lambda: 1.0, margin=2)
    b.rooms.extend(["candy land", "the checkerboard plain"])
    sky = _sky(rng, (0.75, 0.55, 0.95), (1.0, 0.8, 0.88), clouds=0.7, sun=(1.0, 1.0, 0.85))
    return b.build(seed, "candy", sky=sky, fog_rgb=sky.horizon, fog_dist=50.0)
