"""Procedural textures, skins and the packed lookup tables the renderer gathers from.

A *skin* is a named pattern with colours: wall skins are painted on the vertical faces of grid cells,
floor skins on the ground, one ceiling skin indoors. Every texture is ``TS x TS`` texels; texel row 0
is the bottom of a wall (height above ground grows with the row) or the low-y edge of a floor tile.

The renderer never shades per pixel. Instead every texture is pre-blended with the fog colour at
``FOG_LEVELS`` levels (and, for walls, at two face shades), packed as RGBA ``uint32`` so that one
gather per pixel produces the final colour. Letters: S skins, L fog levels, T texels (TS).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

TS = 16                 # texture size in texels (power of two: the renderer wraps with & (TS - 1))
FOG_LEVELS = 16         # quantised fog levels baked into the tables
SIDE_SHADE = (1.0, 0.78)  # x-facing faces at full light, y-facing faces darker (classic raycaster cue)
SKY_ELEV_BINS = 32      # sky panorama rows, elevation 0 .. SKY_MAX_ELEV
SKY_AZ_BINS = 256       # sky panorama columns over 360 degrees
SKY_MAX_ELEV = np.deg2rad(50.0)


@dataclass(frozen=True)
class Skin:
    """A textured material.

    Attributes:
        name: words used in captions, e.g. "red brick wall".
        pattern: one of ``PATTERNS``.
        c1, c2: the two main colours, RGB floats in [0, 1].
        hscale: texels per metre across a face (walls) or across the ground (floors use the scene's
            own density and ignore it).
        vscale: texels per metre upwards (walls); ``TS / height`` stretches one texture over a face.
        seed: varies the noise and random details (paintings, shelves).
    """

    name: str
    pattern: str
    c1: tuple
    c2: tuple = (0.0, 0.0, 0.0)
    hscale: float = 8.0
    vscale: float = 8.0
    seed: int = 0


# ------------------------------------------------------------------------------------------------
# Patterns: (rng) -> mask (TS, TS) in [0, 1] mixing c1 (0) and c2 (1), or a full RGB texture.

def _uv():
    v, u = np.mgrid[0:TS, 0:TS]
    return v, u


def _noise(rng, scale=1.0):
    return rng.normal(0.0, 1.0, (TS, TS)) * scale


def _pattern(p: str, rng: np.random.Generator) -> np.ndarray:
    v, u = _uv()
    if p == "plain":
        return np.clip(0.1 + _noise(rng, 0.08), 0, 1)
    if p == "stripes_v":
        return ((u // 4) % 2).astype(float)
    if p == "stripes_h":
        return ((v // 4) % 2).astype(float)
    if p == "pinstripe":
        return (u % 8 < 2).astype(float)
    if p == "bricks":
        row = v // 4
        off = (row % 2) * 4
        return ((v % 4 == 0) | ((u + off) % 8 == 0)).astype(float)
    if p == "windows":  # one storey per TS texels up, two windows per TS texels across
        return (((u % 8) >= 2) & ((u % 8) <= 5) & (v >= 5) & (v <= 12)).astype(float)
    if p == "panels":
        return ((u % 8 == 0) | (v == 6) | (v == 0)).astype(float) * 0.8 + _noise(rng, 0.05)
    if p == "planks":
        row = v // 3
        return ((v % 3 == 0) | ((u + row * 5) % 16 == 0)).astype(float) + _noise(rng, 0.1)
    if p == "tiles":
        return ((u % 8 == 0) | (v % 8 == 0)).astype(float)
    if p == "checker":
        return ((u // 8 + v // 8) % 2).astype(float)
    if p == "dots":
        return ((((u % 8) - 3.5) ** 2 + ((v % 8) - 3.5) ** 2) < 5).astype(float)
    if p == "diamonds":
        return ((np.abs((u % 8) - 3.5) + np.abs((v % 8) - 3.5)) < 3).astype(float)
    if p in ("grass", "leaves", "sand_noise", "noise", "foliage"):
        amp = {"grass": 0.35, "leaves": 0.5, "sand_noise": 0.2, "noise": 0.25, "foliage": 0.45}[p]
        return np.clip(0.5 + _noise(rng, amp), 0, 1)
    if p == "ripples":
        return 0.5 + 0.5 * np.sin((u + 0.6 * v + rng.uniform(0, 8)) * np.pi / 4) + _noise(rng, 0.08)
    if p == "strata":
        bands = rng.uniform(0, 1, TS)
        return np.clip(bands[v] + _noise(rng, 0.08), 0, 1)
    if p == "cobbles":
        row = v // 4
        off = (row % 2) * 2
        return (((u + off) % 4 == 0) | (v % 4 == 0)).astype(float) + _noise(rng, 0.1)
    if p == "grid":
        return ((u % 16 == 0) | (v % 16 == 0)).astype(float)
    if p == "neon":
        return ((v == 3) | (v == 12) | (u % 16 == 0)).astype(float)
    if p == "dashes":  # road centre line: a dash along x
        return ((np.abs(v - 7.5) < 1.2) & (u < 10)).astype(float)
    if p == "shop":  # glass shop window low down, sign band on top (vscale stretches it)
        return np.where(v >= 12, 1.0, np.where((v >= 2) & (v <= 9) & (u % 8 != 0), 0.55, 0.0))
    if p == "crates":
        return ((u % 8 == 0) | (v % 8 == 0) | (u % 8 == v % 8)).astype(float) * 0.9
    raise ValueError(f"unknown pattern {p!r}")


def _texture_rgb(skin: Skin) -> np.ndarray:
    """(TS, TS, 3) float32 colours of a skin."""
    rng = np.random.default_rng(skin.seed * 7919 + zlib.crc32(skin.pattern.encode()))
    c1, c2 = np.asarray(skin.c1, float), np.asarray(skin.c2, float)
    p = skin.pattern
    if p == "painting":  # a framed picture on a plain wall: random blobs of colour, unique per seed
        v, u = _uv()
        tex = np.broadcast_to(c1, (TS, TS, 3)).copy()
        frame = (u >= 2) & (u <= 13) & (v >= 4) & (v <= 13)
        inner = (u >= 3) & (u <= 12) & (v >= 5) & (v <= 12)
        tex[frame] = c2
        cols = rng.uniform(0.05, 0.95, (4, 3))
        pick = ((u // 3 + rng.integers(0, 4)) + (v // 3) * rng.integers(1, 3)) % 4
        tex[inner] = cols[pick[inner]]
        return tex.astype(np.float32)
    if p == "shelves":  # metal shelving with randomly coloured boxes
        v, u = _uv()
        tex = np.broadcast_to(c2, (TS, TS, 3)).copy()
        box_cols = np.array([[0.72, 0.55, 0.32], [0.55, 0.40, 0.22], [0.85, 0.7, 0.45], [0.3, 0.45, 0.65]])
        for shelf in range(4):
            for slot in range(4):
                if rng.random() < 0.8:
                    tex[shelf * 4 + 1: shelf * 4 + 4, slot * 4: slot * 4 + 3] = box_cols[rng.integers(0, 4)]
        tex[v % 4 == 0] = c1
        return tex.astype(np.float32)
    if p == "tree":  # bark at the bottom quarter, noisy foliage above (vscale stretches over the height)
        v, u = _uv()
        n = np.clip(0.5 + _noise(rng, 0.45), 0, 1)[..., None]
        foliage = c1 * (0.7 + 0.6 * n)
        bark = c2 * (0.8 + 0.3 * ((u % 4 == 0)[..., None]))
        tex = np.where((v < 5)[..., None], bark, foliage)
        return np.clip(tex, 0, 1).astype(np.float32)
    if p == "cactus":
        v, u = _uv()
        ribs = ((u % 4 == 0) | (u % 4 == 3))[..., None]
        return np.where(ribs, c2, c1).astype(np.float32)
    m = np.clip(_pattern(p, rng), 0.0, 1.0)[..., None]
    return ((1.0 - m) * c1 + m * c2).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Packing and fog

def pack_rgb(rgb) -> np.ndarray:
    """Float RGB in [0, 1] (..., 3) -> packed RGBA uint32 (...) (little-endian bytes r, g, b, 255)."""
    c = np.clip(np.rint(np.asarray(rgb, np.float32) * 255.0), 0, 255).astype(np.uint32)
    return c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16) | np.uint32(0xFF000000)


def fog_weights() -> np.ndarray:
    """(L,) fog mix amount of each level, 0 (clear) .. 1 (pure fog colour)."""
    return np.linspace(0.0, 1.0, FOG_LEVELS, dtype=np.float32)


def fog_level(depth, fog_dist: float, far: float) -> np.ndarray:
    """Metres -> fog level index (int32, same shape). Reaches the last level exactly at ``far``."""
    d = np.minimum(np.asarray(depth, np.float32), far)
    a = (1.0 - np.exp(-d / fog_dist)) / (1.0 - np.exp(-far / fog_dist))
    return np.minimum((a * (FOG_LEVELS - 1) + 0.5).astype(np.int32), FOG_LEVELS - 1)


def _fogged(tex: np.ndarray, fog_rgb) -> np.ndarray:
    """(..., T, T, 3) -> (..., L, T, T, 3) blended towards the fog colour."""
    w = fog_weights()[:, None, None, None]
    return tex[..., None, :, :, :] * (1.0 - w) + np.asarray(fog_rgb, np.float32) * w


def wall_table(skins, fog_rgb) -> np.ndarray:
    """Packed wall colours, flat uint32 of shape (S + 1) * 2 * L * T * T, index
    ``((skin * 2 + side) * L + level) * T * T + v * T + u``; skin 0 is unused (no wall)."""
    texs = np.stack([np.zeros((TS, TS, 3), np.float32)] + [_texture_rgb(s) for s in skins])  # (S+1, T, T, 3)
    sides = np.stack([texs * k for k in SIDE_SHADE], 1)  # (S+1, 2, T, T, 3)
    return pack_rgb(_fogged(sides, fog_rgb)).ravel()


def floor_table(skins, fog_rgb) -> np.ndarray:
    """Packed floor colours, flat uint32 (S * L * T * T), index ``(skin * L + level) * T * T + y * T + x``."""
    texs = np.stack([_texture_rgb(s) for s in skins])  # (S, T, T, 3)
    return pack_rgb(_fogged(texs, fog_rgb)).ravel()


def mean_colour(skin: Skin) -> np.ndarray:
    """(3,) mean RGB of a skin's texture, for maps and colour naming."""
    return _texture_rgb(skin).reshape(-1, 3).mean(0)


@dataclass(frozen=True)
class Sky:
    """Sky panorama spec: vertical gradient, clouds, sun and a distant mountain silhouette.

    Colours are RGB floats; ``sun_az`` in radians (world yaw); ``mountains`` 0 disables them,
    otherwise it is their peak elevation in degrees.
    """

    top: tuple
    horizon: tuple
    clouds: float = 0.3
    sun_az: float = 0.8
    sun: tuple = (1.0, 0.95, 0.8)
    mountains: float = 0.0
    mountain_rgb: tuple = (0.45, 0.5, 0.6)
    stars: bool = False
    seed: int = 0


def sky_table(sky: Sky) -> np.ndarray:
    """Packed sky panorama, flat uint32 (E * A): row = elevation bin (0 at the horizon), col = azimuth bin
    (azimuth = world yaw of the viewing direction, 0 .. 2 pi)."""
    rng = np.random.default_rng(sky.seed + 17)
    E, A = SKY_ELEV_BINS, SKY_AZ_BINS
    el = (np.arange(E) + 0.5) / E * SKY_MAX_ELEV  # (E,)
    az = (np.arange(A) + 0.5) / A * 2 * np.pi     # (A,)
    t = np.clip(el / np.deg2rad(35.0), 0, 1) ** 0.7
    img = (1 - t)[:, None, None] * np.asarray(sky.horizon) + t[:, None, None] * np.asarray(sky.top)
    img = np.broadcast_to(img, (E, A, 3)).copy()
    if sky.clouds > 0:  # soft cloud bands: low-frequency noise in azimuth x elevation
        k = np.arange(1, 7)
        ph = rng.uniform(0, 2 * np.pi, (2, len(k)))
        fa = (np.sin(np.outer(az, k) + ph[0]) / k).sum(1)  # (A,)
        fe = (np.sin(np.outer(el * 9, k) + ph[1]) / k).sum(1)  # (E,)
        c = np.clip((fa[None] + fe[:, None]) * 0.6 - 0.2, 0, 1) * sky.clouds
        c *= (el > np.deg2rad(4))[:, None]
        img = img * (1 - c[..., None]) + c[..., None] * 0.97
    if sky.stars:
        st = rng.random((E, A)) < 0.03
        img[st & (el[:, None] > np.deg2rad(3))] = (0.95, 0.95, 1.0)
    # the sun: a disc at 20 degrees elevation
    d_az = np.abs((az - sky.sun_az + np.pi) % (2 * np.pi) - np.pi)
    d = np.hypot(d_az[None], (el - np.deg2rad(20))[:, None])
    img[d < np.deg2rad(4.0)] = sky.sun
    if sky.mountains > 0:  # a silhouette that tells directions apart in open terrain
        k = np.arange(1, 9)
        amp = rng.uniform(0.3, 1.0, len(k)) / k
        ph = rng.uniform(0, 2 * np.pi, len(k))
        prof = (np.sin(np.outer(az, k) + ph) * amp).sum(1)
        prof = (prof - prof.min()) / (np.ptp(prof) + 1e-9)
        peak = np.deg2rad(sky.mountains) * (0.25 + 0.75 * prof)  # (A,)
        mask = el[:, None] < peak[None]
        shade = 0.85 + 0.15 * np.sin(az * 7 + ph[0])[None]
        mcol = np.asarray(sky.mountain_rgb)[None, None] * shade[..., None]
        img = np.where(mask[..., None], mcol, img)
    return pack_rgb(img).ravel()


# ------------------------------------------------------------------------------------------------
# Colours

_NAMED = {
    "white": (0.95, 0.95, 0.95), "grey": (0.55, 0.55, 0.55), "black": (0.08, 0.08, 0.08),
    "red": (0.8, 0.15, 0.12), "orange": (0.95, 0.55, 0.12), "yellow": (0.95, 0.85, 0.2),
    "green": (0.2, 0.65, 0.25), "teal": (0.1, 0.6, 0.6), "blue": (0.15, 0.35, 0.85),
    "purple": (0.5, 0.2, 0.7), "pink": (0.95, 0.55, 0.7), "brown": (0.5, 0.32, 0.18),
    "beige": (0.86, 0.8, 0.62), "dark green": (0.1, 0.35, 0.15), "navy": (0.1, 0.12, 0.4),
    "sky blue": (0.5, 0.75, 0.95), "olive": (0.5, 0.5, 0.15), "maroon": (0.5, 0.1, 0.15),
    "cream": (0.97, 0.93, 0.8), "sand": (0.85, 0.72, 0.5), "lime": (0.6, 0.9, 0.2),
    "magenta": (0.9, 0.1, 0.8), "cyan": (0.1, 0.9, 0.95), "lavender": (0.75, 0.65, 0.95),
    "mint": (0.65, 0.95, 0.8), "terracotta": (0.75, 0.4, 0.28), "charcoal": (0.2, 0.2, 0.22),
}


def colour_name(rgb) -> str:
    """Nearest everyday name for an RGB float colour."""
    c = np.asarray(rgb, float)
    names = list(_NAMED)
    d = [np.sum((c - np.asarray(_NAMED[n])) ** 2) for n in names]
    return names[int(np.argmin(d))]


def hsv(h: float, s: float, v: float) -> tuple:
    """HSV in [0, 1] -> RGB tuple in [0, 1]."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
