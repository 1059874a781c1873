"""Scene generation: ``make_scene(seed, style)`` over the registry of styles.

Seeds: training uses ``seed < EVAL_SEED_OFFSET`` and evaluation uses ``seed >= EVAL_SEED_OFFSET``, so
held-out scenes are never seen in training (``is_heldout``). With ``style=None`` the style is
``STYLES[seed % len(STYLES)]``, so consecutive seeds cycle through every style.
"""

from __future__ import annotations

import zlib

import numpy as np

from camworld.sim import indoor, outdoor
from camworld.sim.scene import Scene

EVAL_SEED_OFFSET = 1_000_000

# name -> (generator, one-line description); indoor first, then outdoor, then the stylised ones
_REGISTRY = {
    "rooms": (indoor.rooms, "a house of rooms joined by doors"),
    "museum": (indoor.museum, "gallery halls with paintings and statues"),
    "warehouse": (indoor.warehouse, "a warehouse with shelving aisles"),
    "atrium": (indoor.atrium, "a shopping-mall atrium"),
    "city": (outdoor.city, "city streets between buildings"),
    "countryside": (outdoor.countryside, "open farmland with landmarks"),
    "forest": (outdoor.forest, "a dense forest with a clearing"),
    "desert": (outdoor.desert, "a desert with mesas and a pyramid"),
    "neon": (outdoor.neon, "a stylised neon maze at night"),
    "candy": (outdoor.candy, "a stylised pastel candy land"),
}
STYLES: tuple = tuple(_REGISTRY)
INDOOR_STYLES: tuple = ("rooms", "museum", "warehouse", "atrium")
_MIN_FREE_CELLS = 60


def is_heldout(seed: int) -> bool:
    """True for evaluation seeds (``seed >= EVAL_SEED_OFFSET``); training must use the others."""
    return int(seed) >= EVAL_SEED_OFFSET


def style_description(style: str) -> str:
    """One-line description of a style."""
    return _REGISTRY[_check_style(style)][1]


def _check_style(style: str) -> str:
    if style not in _REGISTRY:
        raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")
    return style


def make_scene(seed: int, style: str | None = None) -> Scene:
    """Build the scene for ``(seed, style)``; deterministic, a few milliseconds.

    Args:
        seed: int >= 0. Seeds >= ``EVAL_SEED_OFFSET`` are held out for evaluation.
        style: one of ``STYLES``, or None for ``STYLES[seed % len(STYLES)]``.
    Returns:
        a :class:`Scene`.
    Raises:
        ValueError: negative or non-integer seed, unknown style.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    seed = int(seed)
    style = STYLES[seed % len(STYLES)] if style is None else _check_style(style)
    fn = _REGISTRY[style][0]
    for attempt in range(8):  # a layout too cramped to walk in is regenerated from a derived stream
        rng = np.random.default_rng([seed, zlib.crc32(style.encode()), attempt])
        scene = fn(seed, rng)
        if len(scene.free_cells()) >= _MIN_FREE_CELLS:
            return scene
    return scene
