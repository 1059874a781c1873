"""``camworld.sim``: the procedural ground-truth 3D world (DESIGN.md §5).

Static procedural scenes in ``STYLES`` (indoor rooms/museum/warehouse/atrium, outdoor
city/countryside/forest/desert, stylised neon/candy), a batched numpy raycaster producing RGB and
z-depth, captions, and trajectories under the paper's limits.

Seeds: training uses ``seed < EVAL_SEED_OFFSET``; evaluation uses ``seed >= EVAL_SEED_OFFSET``
(``is_heldout(seed)``), so evaluation scenes are never seen in training.

    >>> import numpy as np
    >>> from camworld import sim
    >>> scene = sim.make_scene(3, "rooms")
    >>> poses = sim.random_trajectory(scene, 77, np.random.default_rng(0))
    >>> rgb, depth = sim.render(scene, poses)   # (77, 64, 64, 3) uint8, (77, 64, 64) float32
"""

from camworld.sim.captions import scene_caption, segment_captions
from camworld.sim.render import FAR, MAX_LAYERS, cast_columns, render
from camworld.sim.scene import DEFAULT_CLEARANCE, Scene
from camworld.sim.textures import Skin, Sky
from camworld.sim.trajectories import (loop_trajectory, random_trajectory, rotate_away_and_back, there_and_back,
                                       turn_and_back, turn_in_place, walk_and_back, walk_away_and_return)
from camworld.sim.worldgen import EVAL_SEED_OFFSET, INDOOR_STYLES, STYLES, is_heldout, make_scene, style_description

__all__ = [
    "STYLES", "INDOOR_STYLES", "EVAL_SEED_OFFSET", "is_heldout", "Scene", "Skin", "Sky", "make_scene",
    "style_description", "render", "cast_columns", "FAR", "MAX_LAYERS", "DEFAULT_CLEARANCE",
    "scene_caption", "segment_captions", "random_trajectory", "rotate_away_and_back",
    "walk_away_and_return", "loop_trajectory", "turn_in_place", "turn_and_back", "walk_and_back", "there_and_back",
]
