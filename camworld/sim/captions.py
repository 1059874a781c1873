"""Text captions built from a scene's contents and from what the camera sees.

The paper captions every 77-frame segment of its long videos. Here a caption combines the style,
the camera's motion over the segment, the surfaces that fill the view (found by casting a few rays
per frame) and the ground under the camera. Wording varies with the ``rng``; the same seeded rng
gives the same captions.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from camworld.sim.render import _check_poses, cast_columns
from camworld.sim.scene import Scene

_STYLE_PHRASES = {
    "rooms": ["a furnished house", "an apartment of connected rooms", "a home interior"],
    "museum": ["an art museum", "a gallery of paintings", "quiet exhibition halls"],
    "warehouse": ["a large warehouse", "a storage hall with tall shelving", "an industrial depot"],
    "atrium": ["a shopping mall atrium", "a bright indoor mall", "a mall concourse lined with shops"],
    "city": ["a city street", "a downtown grid of streets", "an urban neighbourhood"],
    "countryside": ["open countryside", "farmland under a wide sky", "green fields"],
    "forest": ["a dense forest", "the woods", "a forest of tall trees"],
    "desert": ["a sunny desert", "dry desert sands", "a desert valley"],
    "neon": ["a glowing neon maze", "a synthwave maze at night", "a dark maze lit by neon"],
    "candy": ["a pastel candy land", "a whimsical candy world", "a toy-like land of sweets"],
}


_MASS_NOUNS = ("wallpaper", "walls", "shrubs", "crates", "stripes", "statues", "shelving", "floor")


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def _article(name: str) -> str:
    if name.startswith(("a ", "an ", "the ", "four ", "crumbling ")) or name.endswith(_MASS_NOUNS):
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def scene_caption(scene: Scene, rng: np.random.Generator | None = None) -> str:
    """One sentence describing the whole scene (style plus a few of its landmarks and regions).

    Args:
        scene: the scene.
        rng: varies the wording; None uses a generator seeded by the scene seed (deterministic).
    """
    rng = np.random.default_rng(scene.seed) if rng is None else rng
    phrase = _pick(rng, _STYLE_PHRASES.get(scene.style, [scene.style]))
    things = [n for n, _, _ in scene.landmarks]
    things = list(dict.fromkeys(things))
    rng.shuffle(things)
    rooms = list(scene.rooms)
    parts = [_pick(rng, ["A view of ", "Exploring ", "A walk through ", "Inside " if scene.indoor else "Out in "]) + phrase]
    if things:
        k = min(len(things), int(rng.integers(1, 4)))
        parts.append(_pick(rng, [" with ", " featuring ", ", home to "]) + ", ".join(things[:k]))
    if rooms and rng.random() < 0.6:
        parts.append(", including " + _pick(rng, rooms))
    return "".join(parts) + "."


def _motion(seg: np.ndarray) -> str:
    """Words for how the camera moves over a segment (F, 3)."""
    d = seg[-1, :2] - seg[0, :2]
    yaw0 = seg[0, 2]
    fwd = d @ np.array([np.cos(yaw0), np.sin(yaw0)])
    side = d @ np.array([-np.sin(yaw0), np.cos(yaw0)])
    turn = float(np.rad2deg(seg[-1, 2] - seg[0, 2]))
    dist = float(np.linalg.norm(np.diff(seg[:, :2], axis=0), axis=1).sum())
    if dist < 0.3:
        move = "the camera stands still"
    elif abs(fwd) >= abs(side):
        move = "the camera moves forward" if fwd > 0 else "the camera backs away"
    else:
        move = "the camera drifts left" if side > 0 else "the camera drifts right"
    if abs(turn) > 15:
        move += (" while turning left" if turn > 0 else " while turning right")
    return move


def segment_captions(scene: Scene, poses, rng: np.random.Generator, every: int = 77) -> list:
    """One caption per ``every``-frame segment of a trajectory (the last may be shorter).

    Each says how the camera moves, the setting, the surfaces that fill most of the view during the
    segment and the ground underfoot.

    Args:
        scene: the scene.
        poses: (N, 3) planar poses.
        rng: varies the wording (same state, same captions).
        every: segment length in frames.
    Returns:
        list of ceil(N / every) strings.
    """
    P = _check_poses(poses)
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be an int >= 1, got {every!r}")
    names = ["?"] + [s.name for s in scene.wall_skins]
    out = []
    for a in range(0, len(P), every):
        seg = P[a:a + every]
        sub = seg[:: max(1, len(seg) // 8)]
        hits = cast_columns(scene, sub, 16)
        d, skin = hits["depth"], hits["skin"]
        counts = Counter()
        for k in range(d.shape[-1]):  # nearer layers fill more of the view
            vis = np.isfinite(d[..., k]) & (d[..., k] < 30.0)
            counts.update({names[s]: (1.0 / (k + 1)) for s in skin[..., k][vis].tolist()})
        seen = [n for n, _ in counts.most_common(3)]
        cell = ((seg[len(seg) // 2, :2] - np.asarray(scene.origin)) / scene.cell).astype(int)
        cell = np.clip(cell, 0, np.array(scene.shape[::-1]) - 1)
        ground = scene.floor_skins[int(scene.floor[cell[1], cell[0]])].name
        setting = _pick(rng, _STYLE_PHRASES.get(scene.style, [scene.style]))
        move = _motion(seg)
        text = _pick(rng, ["{M} in {S}", "In {S}, {m}", "{M} through {S}"]).format(
            M=move[0].upper() + move[1:], m=move, S=setting)
        if seen:
            text += _pick(rng, [", past ", ", looking at ", ", with a view of "])
            text += " and ".join(_article(s) for s in seen[:2])
        if rng.random() < 0.7:
            text += _pick(rng, [", on ", ", over ", ", across "]) + "the " + ground
        out.append(text + ".")
    return out
