"""Batched headless renderer: a 2.5D grid raycaster (one ray per image column) in pure numpy.

How a frame is made (all frames of a batch at once):
1. ``cast_columns``: a vectorised DDA walks every column's ray through the cell grid and keeps up to
   ``MAX_LAYERS`` visible wall hits per column, nearest first. A farther hit is kept only if its top
   shows above every nearer one, so tall buildings rise behind low walls and hedges.
2. ``render``: per pixel, the ground (below the horizon) and the sky or ceiling (above) come from
   per-row distances; walls are painted far to near over them. Every colour is one gather from
   tables with texture, fog and face shade baked in (``textures.py``), so a pixel costs a handful of
   integer operations.

Depth is z-depth (metres along the optical axis, OpenCV camera z): for a ray through column c the
direction is ``fwd + x_c * right`` with ``x_c = (c + 0.5 - W / 2) / f``, so the ray parameter at a hit
*is* the z-depth. Sky and anything beyond ``FAR`` read ``FAR``.

Letters: N frames, H/W height/width, K wall layers per column, R rays (N * W).
"""

from __future__ import annotations

import numpy as np

from camworld import geometry
from camworld.sim import textures as tx
from camworld.sim.scene import Scene

FAR = 50.0        # metres: the far limit; surfaces fade into fog before it, sky/beyond reads FAR
MAX_LAYERS = 3    # visible wall hits kept per column
_OUTSIDE = 255    # wall id of the padding ring around the grid: a ray that reaches it stops
_TEX_PER_CELL = 8  # floor/ceiling texels per cell (a texture spans two cells)
_TEX_SHIFT = 3     # log2(_TEX_PER_CELL): texel -> cell
_TS_SHIFT = 4      # log2(textures.TS): texel row -> table offset
_CHUNK_PIXELS = 1 << 17  # pixels shaded per chunk, so the working set stays in cache
_FLOOR_REACH = 2.3       # ground lookups reach FAR * this (|ray direction| <= 2.3, hfov up to ~132 deg)


def _tables(scene: Scene) -> dict:
    """Lookup tables for ``scene`` (built on first use and cached on the scene)."""
    t = scene._cache.get("render")
    if t is not None:
        return t
    if len(scene.wall_skins) >= _OUTSIDE:
        raise ValueError(f"at most {_OUTSIDE - 1} wall skins, got {len(scene.wall_skins)}")
    wall = np.pad(scene.wall, 1, constant_values=_OUTSIDE)
    fpad = int(np.ceil(_FLOOR_REACH * FAR / scene.cell)) + 2
    floor = np.pad(scene.floor.astype(np.int32), fpad, mode="edge") * (tx.FOG_LEVELS * tx.TS * tx.TS)
    t = dict(
        gw=wall.shape[1],
        gh=wall.shape[0],
        void=wall.size,  # index of an extra empty cell past the end, where finished rays park
        wall=np.append(wall.ravel(), np.uint8(0)),
        height=np.append(np.pad(scene.height.astype(np.float32), 1).ravel(), np.float32(0)),
        fpad=fpad,
        fgw=floor.shape[1],
        floor=floor.ravel(),  # floor skin index premultiplied by its table stride, padded for FAR
        wall_tab=tx.wall_table(scene.wall_skins, scene.fog_rgb),
        floor_tab=tx.floor_table(scene.floor_skins, scene.fog_rgb),
        hscale=np.array([1.0] + [s.hscale for s in scene.wall_skins], np.float32),
        vscale=np.array([1.0] + [s.vscale for s in scene.wall_skins], np.float32),
    )
    if scene.indoor:
        t["ceil_tab"] = tx.floor_table([scene.ceiling_skin], scene.fog_rgb)
    else:
        t["sky_tab"] = tx.sky_table(scene.sky)
    scene._cache["render"] = t
    return t


def _check_poses(poses) -> np.ndarray:
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"poses must be (3,) or (N, 3) planar (x, y, yaw), got shape {np.shape(poses)}")
    if not np.isfinite(p).all():
        bad = np.flatnonzero(~np.isfinite(p).all(1))
        raise ValueError(f"poses contain NaN or inf at rows {bad[:5].tolist()}: every (x, y, yaw) must be finite")
    return p


def _check_inside(scene: Scene, P: np.ndarray):
    xmin, xmax, ymin, ymax = scene.extent
    out = (P[:, 0] < xmin) | (P[:, 0] >= xmax) | (P[:, 1] < ymin) | (P[:, 1] >= ymax)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"pose {i} at ({P[i, 0]:.2f}, {P[i, 1]:.2f}) is outside the scene extent "
                         f"x [{xmin}, {xmax}), y [{ymin}, {ymax}); sample poses with scene.sample_free_pose")


def _check_size(height, width) -> tuple:
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive int (pixels), got {v!r}")
    return int(height), int(width)


def cast_columns(scene: Scene, poses, width: int, hfov_deg: float = geometry.DEFAULT_HFOV_DEG,
                 tan_top: float = np.inf) -> dict:
    """Cast one ray per image column and keep the visible wall hits.

    Args:
        scene: the scene.
        poses: (N, 3) planar poses (validated by the caller).
        width: image width W in pixels.
        hfov_deg: horizontal field of view.
        tan_top: tangent of the half vertical FOV above the horizon; a hit whose top reaches it
            hides everything behind it, so the ray stops there.
    Returns:
        dict of (N, W, K) arrays, layer 0 nearest: ``depth`` float32 metres (inf = no hit), ``skin``
        int32 wall skin id (0 = none), ``side`` int32 (0: face across x, 1: across y), ``top`` float32
        wall height in metres, ``u`` float32 metres along the face; plus ``dirx``, ``diry`` (N, W)
        float32 ray directions (z-depth parametrised) and ``f`` the focal length in pixels.
    """
    poses = _check_poses(poses)
    _check_inside(scene, poses)
    t = _tables(scene)
    N, W, K = len(poses), width, MAX_LAYERS
    f = geometry.focal_from_hfov(W, hfov_deg)
    xc = ((np.arange(W) + 0.5 - W / 2.0) / f).astype(np.float32)        # (W,)
    c = np.cos(poses[:, 2]).astype(np.float32)[:, None]
    s = np.sin(poses[:, 2]).astype(np.float32)[:, None]
    dirx, diry = c + xc * s, s - xc * c                                 # (N, W): fwd + x_c * right
    cell = scene.cell
    px = np.repeat(((poses[:, 0] - scene.origin[0]) / cell + 1.0).astype(np.float32), W)  # grid units (padded)
    py = np.repeat(((poses[:, 1] - scene.origin[1]) / cell + 1.0).astype(np.float32), W)
    dx, dy = dirx.ravel(), diry.ravel()                                 # (R,)
    R = N * W
    mx, my = px.astype(np.int32), py.astype(np.int32)
    with np.errstate(divide="ignore"):
        ddx = np.where(dx == 0, np.float32(1e30), np.abs(1.0 / dx)).astype(np.float32)
        ddy = np.where(dy == 0, np.float32(1e30), np.abs(1.0 / dy)).astype(np.float32)
    sx = np.where(dx < 0, -1, 1).astype(np.int32)
    sy = np.where(dy < 0, -1, 1).astype(np.int32)
    side_x = np.where(dx < 0, px - mx, mx + 1.0 - px).astype(np.float32) * ddx
    side_y = np.where(dy < 0, py - my, my + 1.0 - py).astype(np.float32) * ddy

    # one spare output row (index R) absorbs writes from parked rays
    out_d = np.full((R + 1, K), np.inf, np.float32)
    out_skin = np.zeros((R + 1, K), np.int32)
    out_side = np.zeros((R + 1, K), np.int32)
    out_top = np.zeros((R + 1, K), np.float32)
    out_u = np.zeros((R + 1, K), np.float32)

    ids = np.arange(R, dtype=np.int32)
    count = np.zeros(R, np.int32)
    maxang = np.full(R, -np.inf, np.float32)
    gw, wall, height, void = t["gw"], t["wall"], t["height"], t["void"]
    t_max = FAR / cell
    cam_h = geometry.CAMERA_HEIGHT
    ceil_h = scene.ceiling if scene.indoor else np.inf
    st = [ids, mx, my, sx, sy, ddx, ddy, side_x, side_y, px, py, dx, dy, count, maxang]
    live, parked = R, 0
    while live:
        ids, mx, my, sx, sy, ddx, ddy, side_x, side_y, px, py, dx, dy, count, maxang = st
        xside = side_x < side_y
        step_x = np.where(xside, sx, 0)
        step_y = np.where(xside, 0, sy)
        mx += step_x
        my += step_y
        side_x += np.where(xside, ddx, 0)
        side_y += np.where(xside, 0, ddy)
        ci = my * gw + mx
        cand = np.flatnonzero(wall[ci])            # rays that entered a wall cell (or left the grid)
        if not cand.size:
            continue
        cc = ci[cand]
        v = wall[cc]
        xs = xside[cand]
        tt = np.where(xs, side_x[cand] - ddx[cand], side_y[cand] - ddy[cand])   # grid units along the ray
        gone = (v == _OUTSIDE) | (tt > t_max)
        hc = height[cc]
        hp = height[cc - np.where(xs, step_x[cand], step_y[cand] * gw)]       # the cell we came from
        tm = tt * cell                                                        # metres
        ang = (hc - cam_h) / tm                                               # tangent of the top's elevation
        rec = ~gone & (hc > hp + 1e-4) & (ang > maxang[cand] + 1e-6)          # a new visible layer
        fin = cand[gone]
        if rec.any():
            rc, xr, tr, hr, ar = cand[rec], xs[rec], tt[rec], hc[rec], ang[rec]
            r, k = ids[rc], count[rc]
            out_d[r, k] = tm[rec]
            out_skin[r, k] = v[rec]
            out_side[r, k] = np.where(xr, 0, 1)
            out_top[r, k] = hr
            out_u[r, k] = np.where(xr, py[rc] + tr * dy[rc], px[rc] + tr * dx[rc]) * cell
            count[rc] = k + 1
            maxang[rc] = ar
            full = (k + 1 >= K) | (hr >= ceil_h - 1e-3) | (ar >= tan_top)
            if full.any():
                fin = np.concatenate([fin, rc[full]])
        if fin.size:  # park finished rays on an empty cell outside the grid; they write to row R
            ids[fin] = R
            mx[fin], my[fin], sx[fin], sy[fin] = void, 0, 0, 0
            live -= fin.size
            parked += fin.size
            if parked * 2 > len(ids) and live:
                keep = ids != R
                st = [a[keep] for a in st]
                parked = 0
    return dict(depth=out_d[:R].reshape(N, W, K), skin=out_skin[:R].reshape(N, W, K),
                side=out_side[:R].reshape(N, W, K), top=out_top[:R].reshape(N, W, K),
                u=out_u[:R].reshape(N, W, K), dirx=dirx, diry=diry, f=f)


def render(scene: Scene, poses, height: int = 64, width: int = 64,
           hfov_deg: float = geometry.DEFAULT_HFOV_DEG):
    """Render RGB and depth frames of ``scene`` at planar ``poses``.

    Args:
        scene: from :func:`camworld.sim.make_scene`.
        poses: (N, 3) or (3,) planar poses ``(x, y, yaw)``, metres and radians; camera at
            ``geometry.CAMERA_HEIGHT``. Poses should be free (``scene.is_free``); inside a wall the
            view is undefined.
        height, width: frame size in pixels (positive ints).
        hfov_deg: horizontal field of view in degrees; intrinsics are ``geometry.intrinsics``.
    Returns:
        rgb: uint8 (N, H, W, 3); depth: float32 (N, H, W), z-depth in metres (sky / beyond: ``FAR``).
        Deterministic in (scene, pose, size, hfov).
    Raises:
        ValueError: non-finite poses, wrong pose shape, bad frame size or FOV.
    """
    if not isinstance(scene, Scene):
        raise ValueError(f"scene must be a camworld.sim.Scene (use make_scene), got {type(scene).__name__}")
    P = _check_poses(poses)
    H, W = _check_size(height, width)
    f = geometry.focal_from_hfov(W, hfov_deg)  # validates hfov
    _check_inside(scene, P)
    cy = H / 2.0
    hits = cast_columns(scene, P, W, hfov_deg, tan_top=cy / f)
    t = _tables(scene)
    N = len(P)
    rgb = np.empty((N, H, W, 3), np.uint8)
    depth = np.empty((N, H, W), np.float32)
    per = max(1, _CHUNK_PIXELS // (H * W))
    buf = np.empty((min(per, N), H, W), np.uint32)
    for a in range(0, N, per):
        b = min(N, a + per)
        chunk = {k: (v[a:b] if isinstance(v, np.ndarray) else v) for k, v in hits.items()}
        _shade(scene, t, P[a:b], chunk, H, W, buf[: b - a], depth[a:b])
        _rgba_to_rgb(buf[: b - a], rgb[a:b])
    return rgb, depth


def _rgba_to_rgb(src: np.ndarray, dst: np.ndarray):
    """Packed RGBA uint32 (n, H, W) -> uint8 (n, H, W, 3), by word arithmetic when the pixel count
    allows it (4 pixels = 3 output words), else by a strided copy."""
    n = src.size
    if n % 4 == 0 and dst.flags.c_contiguous:
        p = src.reshape(-1, 4)
        o = dst.reshape(-1).view(np.uint32).reshape(-1, 3)
        p0, p1, p2, p3 = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
        o[:, 0] = (p0 & 0xFFFFFF) | (p1 << 24)
        o[:, 1] = ((p1 >> 8) & 0xFFFF) | (p2 << 16)
        o[:, 2] = ((p2 >> 16) & 0xFF) | (p3 << 8)
    else:
        dst[...] = src.view(np.uint8).reshape(src.shape + (4,))[..., :3]


def _plane(t: dict, scene: Scene, P, dirx, diry, dist, tab, skin_grid: bool):
    """Textured ground/ceiling pixels for rows at z-depths ``dist`` (Hr,) metres -> uint32 (n, Hr, W)."""
    cell, k = scene.cell, _TEX_PER_CELL
    dg = (np.minimum(dist, FAR) * (k / cell)).astype(np.float32)[None, :, None]    # (1, Hr, 1) texels
    off = t["fpad"] * k
    px = ((P[:, 0] - scene.origin[0]) * (k / cell) + off).astype(np.float32)[:, None, None]
    py = ((P[:, 1] - scene.origin[1]) * (k / cell) + off).astype(np.float32)[:, None, None]
    gx = dg * dirx[:, None, :]                                                     # (n, Hr, W)
    gx += px
    gy = dg * diry[:, None, :]
    gy += py
    if np.abs(dirx).max() > _FLOOR_REACH or np.abs(diry).max() > _FLOOR_REACH:  # very wide FOV
        lim = t["fgw"] * k - 1
        np.clip(gx, 0, lim, out=gx)
        np.clip(gy, 0, len(t["floor"]) // t["fgw"] * k - 1, out=gy)
    tX = gx.astype(np.int32)
    tY = gy.astype(np.int32)
    idx = tY & (tx.TS - 1)
    idx <<= _TS_SHIFT
    idx |= tX & (tx.TS - 1)
    idx += (tx.fog_level(dist, scene.fog_dist, FAR) * (tx.TS * tx.TS))[None, :, None]
    if skin_grid:
        tY >>= _TEX_SHIFT
        tY *= t["fgw"]
        tX >>= _TEX_SHIFT
        tY += tX
        idx += t["floor"][tY]
    return tab[idx]


def _shade(scene, t, P, hits, H, W, rgb, depth):
    """Fill ``rgb`` (n, H, W) packed uint32 and ``depth`` (n, H, W) for one chunk of frames."""
    f = hits["f"]
    cy = H / 2.0
    cam_h = geometry.CAMERA_HEIGHT
    dirx, diry = hits["dirx"], hits["diry"]                        # (n, W)
    rows = np.arange(H) + 0.5
    r_floor = int(np.floor(cy - 0.5)) + 1                          # first row below the horizon
    # ---- per column and layer: rows covered, texture mapping
    TT = tx.TS * tx.TS
    layers = []
    far_top = np.full(hits["depth"].shape[:2], H, np.int64)        # (n, W) top row of the farthest wall
    far_bottom = np.full(hits["depth"].shape[:2], r_floor, np.int64)
    for k in range(MAX_LAYERS):
        d = hits["depth"][..., k]                                   # (n, W)
        valid = np.isfinite(d)
        if not valid.any():
            break
        dd = np.where(valid, d, 1.0).astype(np.float32)
        top = hits["top"][..., k]
        rs = np.where(valid, np.clip(np.ceil(cy - f * (top - cam_h) / dd - 0.5), 0, H), H).astype(np.int32)
        re = np.where(valid, np.clip(np.ceil(cy + f * cam_h / dd - 0.5), 0, H), 0).astype(np.int32)
        far_top = np.where(valid, rs, far_top)
        far_bottom = np.where(valid, re, far_bottom)
        layers.append((k, valid, dd, rs, re))
    # ---- ground: only rows that some column can show (below the farthest wall of every column)
    g = np.where(far_top <= r_floor, np.maximum(far_bottom, r_floor), r_floor)
    rf0 = int(g.min())
    if rf0 < H:
        dist = (cam_h * f / (rows[rf0:] - cy)).astype(np.float32)   # (Hf,) z-depth of the ground
        rgb[:, rf0:] = _plane(t, scene, P, dirx, diry, dist, t["floor_tab"], True)
        depth[:, rf0:] = np.minimum(dist, FAR)[None, :, None]
    # ---- sky or ceiling: only rows above the highest wall top
    rs1 = min(r_floor, int(far_top.max()))
    if rs1 > 0:
        up = cy - rows[:rs1]                                        # (Hs,) pixels above the horizon
        if scene.indoor:
            with np.errstate(divide="ignore"):
                dist = np.where(up > 0, (scene.ceiling - cam_h) * f / np.maximum(up, 1e-9), FAR).astype(np.float32)
            rgb[:, :rs1] = _plane(t, scene, P, dirx, diry, dist, t["ceil_tab"], False)
            depth[:, :rs1] = np.minimum(dist, FAR)[None, :, None]
        else:
            el = np.arctan2(up, f)
            eb = np.minimum((el / tx.SKY_MAX_ELEV * tx.SKY_ELEV_BINS).astype(np.int32), tx.SKY_ELEV_BINS - 1)
            xc = (np.arange(W) + 0.5 - W / 2.0) / f
            az = P[:, 2:3] - np.arctan(xc)[None]                    # (n, W) world azimuth of each column
            ab = (np.floor(az / (2 * np.pi) * tx.SKY_AZ_BINS).astype(np.int64) % tx.SKY_AZ_BINS).astype(np.int32)
            rgb[:, :rs1] = t["sky_tab"][(eb * tx.SKY_AZ_BINS)[None, :, None] + ab[:, None, :]]
            depth[:, :rs1] = FAR
    # ---- walls, far layer first so nearer ones overwrite it
    for k, valid, dd, rs, re in reversed(layers):
        r0, r1 = int(rs.min()), int(re.max())
        if r1 <= r0:
            continue
        skin = hits["skin"][..., k]
        vs = t["vscale"][skin]
        A = ((cam_h - (0.5 - cy) * dd / f) * vs).astype(np.float32)   # texel row at image row 0
        B = (-(dd / f) * vs).astype(np.float32)                       # texel rows per image row
        tu = (hits["u"][..., k] * t["hscale"][skin]).astype(np.int32) & (tx.TS - 1)
        lvl = tx.fog_level(dd, scene.fog_dist, FAR)
        base = ((skin * 2 + hits["side"][..., k]) * tx.FOG_LEVELS + lvl) * TT + tu   # (n, W)
        rr = np.arange(r0, r1, dtype=np.int32)[None, :, None]          # (1, Hr, 1)
        mask = rr >= rs[:, None, :]                                    # (n, Hr, W)
        mask &= rr < re[:, None, :]
        tv = B[:, None, :] * rr.astype(np.float32)
        tv += A[:, None, :]
        idx = tv.astype(np.int32)
        idx &= tx.TS - 1
        idx <<= _TS_SHIFT
        idx += base[:, None, :]
        np.copyto(rgb[:, r0:r1], t["wall_tab"][idx], where=mask)
        np.copyto(depth[:, r0:r1], np.broadcast_to(dd[:, None, :], mask.shape), where=mask)
