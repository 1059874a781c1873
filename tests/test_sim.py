"""Tests for camworld.sim: scenes, the renderer, trajectories and captions."""

import pickle

import numpy as np
import pytest

from camworld import geometry as g
from camworld import sim
from camworld.sim import Scene, Skin, Sky


# ------------------------------------------------------------------------------------------------
# helpers

def _box_scene(walls, size=12, indoor=False):
    """A hand-made scene: 1 m cells on [0, size)^2, ``walls`` = [(x0, y0, x1, y1, skin_id, height)],
    skins 1 = pure blue, 2 = pure red; black fog so colours keep their hue."""
    wall = np.zeros((size, size), np.uint8)
    height = np.zeros((size, size), np.float32)
    for x0, y0, x1, y1, sid, h in walls:
        wall[y0:y1, x0:x1] = sid
        height[y0:y1, x0:x1] = h
    skins = (Skin("blue wall", "plain", (0.0, 0.0, 1.0), (0.0, 0.0, 1.0)),
             Skin("red wall", "plain", (1.0, 0.0, 0.0), (1.0, 0.0, 0.0)))
    return Scene(seed=0, style="test", cell=1.0, origin=(0.0, 0.0), wall=wall, height=height,
                 floor=np.zeros((size, size), np.uint8), solid=wall > 0, wall_skins=skins,
                 floor_skins=(Skin("grey floor", "plain", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),),
                 ceiling=3.0 if indoor else None,
                 ceiling_skin=Skin("white", "plain", (1, 1, 1), (1, 1, 1)) if indoor else None,
                 sky=None if indoor else Sky(top=(0.2, 0.9, 0.2), horizon=(0.2, 0.9, 0.2), clouds=0.0),
                 fog_rgb=(0.0, 0.0, 0.0), fog_dist=1e6)


def _is_red(rgb):
    return (rgb[..., 0].astype(int) > 100) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)


def _is_blue(rgb):
    return (rgb[..., 2].astype(int) > 100) & (rgb[..., 0] < 60) & (rgb[..., 1] < 60)


def _window_stats(poses, n=77):
    step = np.linalg.norm(np.diff(poses[:, :2], axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(step)])
    travel = cum[n - 1:] - cum[: len(cum) - n + 1]                 # path length over every 77-frame window
    turn = np.concatenate([[0.0], np.cumsum(np.abs(g.wrap_angle(np.diff(poses[:, 2]))))])
    yaw = turn[n - 1:] - turn[: len(turn) - n + 1]                 # total yaw change over the window
    return travel, np.rad2deg(yaw)


# ------------------------------------------------------------------------------------------------
# scenes

def test_styles_and_seeds():
    assert len(sim.STYLES) >= 8 and len(set(sim.STYLES)) == len(sim.STYLES)
    assert sim.EVAL_SEED_OFFSET == 1_000_000
    assert not sim.is_heldout(999_999) and sim.is_heldout(1_000_000)
    with pytest.raises(ValueError, match="valid styles: rooms"):
        sim.make_scene(0, "moon")
    with pytest.raises(ValueError, match="seed"):
        sim.make_scene(-1)
    assert sim.make_scene(3).style == sim.STYLES[3 % len(sim.STYLES)]


@pytest.mark.parametrize("style", sim.STYLES)
def test_scene_determinism_and_pickle(style):
    a, b = sim.make_scene(7, style), sim.make_scene(7, style)
    for name in ("wall", "height", "floor", "solid"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    rng = np.random.default_rng(0)
    P = np.stack([a.sample_free_pose(rng) for _ in range(4)])
    assert a.is_free(P[:, :2]).all()
    ra, da = sim.render(a, P)
    rb, db = sim.render(b, P)
    np.testing.assert_array_equal(ra, rb)
    np.testing.assert_array_equal(da, db)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(sim.render(c, P)[0], ra)
    assert sim.make_scene(8, style).wall.tobytes() != a.wall.tobytes() or \
        sim.make_scene(8, style).floor.tobytes() != a.floor.tobytes()


def test_free_space_queries():
    s = _box_scene([(6, 0, 7, 12, 1, 3.0)])
    assert s.extent == (0.0, 12.0, 0.0, 12.0)
    assert s.is_free([2.5, 5.5]) and not s.is_free([6.5, 5.5])
    assert not s.is_free([5.8, 5.5], clearance=0.3) and s.is_free([5.6, 5.5], clearance=0.3)
    assert not s.is_free([0.1, 5.0], clearance=0.3)     # too close to the border
    assert not s.is_free([-3.0, 5.0]) and not s.is_free([np.nan, 1.0])
    assert s.segment_free([1, 1], [5, 9]) and not s.segment_free([2, 5], [10, 5])
    assert s.is_free(np.zeros((3, 4, 2)) + 2.5).shape == (3, 4)
    m = s.map_image(8)
    assert m.dtype == np.uint8 and m.shape == (96, 96, 3)
    np.testing.assert_allclose(s.world_to_map([[0.0, 12.0], [12.0, 0.0]], 8), [[0, 0], [96, 96]])


# ------------------------------------------------------------------------------------------------
# renderer

def test_render_shapes_and_single_pose():
    s = sim.make_scene(1, "city")
    p = s.sample_free_pose(np.random.default_rng(0))
    rgb, depth = sim.render(s, p, 48, 80)
    assert rgb.shape == (1, 48, 80, 3) and rgb.dtype == np.uint8
    assert depth.shape == (1, 48, 80) and depth.dtype == np.float32
    assert np.all(depth > 0) and np.all(depth <= sim.FAR)


def test_depth_of_a_wall_at_known_distance():
    s = _box_scene([(6, 0, 7, 12, 1, 3.0)], indoor=True)  # wall face at x = 6, camera at x = 2.5
    rgb, depth = sim.render(s, [2.5, 5.5, 0.0], 64, 64)
    wall = _is_blue(rgb[0])
    assert wall.sum() > 0.5 * 64 * 64
    np.testing.assert_allclose(depth[0][wall], 3.5, rtol=1e-5)   # z-depth: the same across the wall
    f = g.focal_from_hfov(64)
    bottom = int(np.ceil(32 + f * g.CAMERA_HEIGHT / 3.5 - 0.5))
    assert wall[:, 32].nonzero()[0].max() == bottom - 1
    for r in range(bottom, 64):                                  # the floor in front of the wall
        assert depth[0, r, 32] == pytest.approx(g.CAMERA_HEIGHT * f / (r + 0.5 - 32), rel=1e-5)
    top = int(np.ceil(32 - f * (3.0 - g.CAMERA_HEIGHT) / 3.5 - 0.5))
    assert depth[0, top - 1, 32] == pytest.approx((3.0 - g.CAMERA_HEIGHT) * f / (32 - (top - 0.5)), rel=1e-5)
    # turned 90 degrees left the wall is out of view
    rgb, _ = sim.render(s, [2.5, 5.5, np.pi / 2])
    assert not _is_blue(rgb[0]).any()


def test_occlusion_and_taller_things_behind():
    # a blue wall hides an equally tall red wall behind it
    s = _box_scene([(5, 0, 6, 12, 1, 2.0), (9, 0, 10, 12, 2, 2.0)])
    rgb, depth = sim.render(s, [2.5, 5.5, 0.0])
    assert _is_blue(rgb[0]).any() and not _is_red(rgb[0]).any()
    # ... but a taller one rises above it, and its depth is the far distance
    s = _box_scene([(5, 0, 6, 12, 1, 2.0), (9, 0, 10, 12, 2, 12.0)])
    rgb, depth = sim.render(s, [2.5, 5.5, 0.0])
    red = _is_red(rgb[0])
    assert red.any() and _is_blue(rgb[0]).any()
    assert red.nonzero()[0].max() < _is_blue(rgb[0]).nonzero()[0].min()   # red only above blue
    np.testing.assert_allclose(depth[0][red], 6.5, rtol=1e-5)


@pytest.mark.parametrize("style", ["rooms", "city", "forest"])
def test_depth_reprojects_onto_surfaces(style):
    s = sim.make_scene(2, style)
    rng = np.random.default_rng(1)
    P = np.stack([s.sample_free_pose(rng) for _ in range(6)])
    H = W = 32
    _, depth = sim.render(s, P, H, W)
    rays = g.pixel_rays(H, W)                                    # (H, W, 3), z = 1
    E = g.planar_to_extrinsics(P)                                # (N, 3, 4)
    pts = np.einsum("nij,nhwj->nhwi", E[:, :, :3], rays[None] * depth[..., None]) + E[:, None, None, :, 3]
    ok = depth < sim.FAR - 1e-3
    on_floor = np.abs(pts[..., 2]) < 1e-3 * depth
    on_ceiling = np.abs(pts[..., 2] - (s.ceiling or -99.0)) < 1e-3 * depth
    near_wall = ~s.is_free(pts[..., :2], clearance=0.02)
    assert np.all((on_floor | on_ceiling | near_wall)[ok])
    assert np.all(pts[..., 2][ok] > -1e-3)


def test_styles_look_different():
    feats = []
    for style in sim.STYLES:
        s = sim.make_scene(1, style)
        rng = np.random.default_rng(0)
        P = np.stack([s.sample_free_pose(rng) for _ in range(24)])
        rgb, _ = sim.render(s, P, 32, 32)
        x = rgb.astype(float)
        feats.append(np.concatenate([x[:, :16].mean((0, 1, 2)), x[:, 16:].mean((0, 1, 2))]))
        assert x.std() > 10  # textured, not flat
    F = np.array(feats)
    D = np.linalg.norm(F[:, None] - F[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    assert D.min() > 10, f"two styles look alike: min distance {D.min():.1f}"


@pytest.mark.parametrize("bad, match", [
    ([0.0, np.nan, 0.0], "NaN or inf"),
    ([[0.0, 0.0, np.inf]], "NaN or inf"),
    (np.zeros((2, 2)), "shape"),
    (np.zeros((2, 3, 3)), "shape"),
    ([1e4, 0.0, 0.0], "outside the scene"),
])
def test_render_bad_poses(bad, match):
    s = sim.make_scene(0, "rooms")
    with pytest.raises(ValueError, match=match):
        sim.render(s, bad)


@pytest.mark.parametrize("h, w", [(-1, 64), (64, 0), (64.0, 64), (True, 64)])
def test_render_bad_sizes(h, w):
    s = sim.make_scene(0, "rooms")
    p = s.sample_free_pose(np.random.default_rng(0))
    with pytest.raises(ValueError, match="positive int"):
        sim.render(s, p, h, w)


# ------------------------------------------------------------------------------------------------
# trajectories

@pytest.mark.parametrize("style", sim.STYLES)
def test_random_trajectory_limits(style):
    s = sim.make_scene(5, style)
    rng = np.random.default_rng(3)
    P = sim.random_trajectory(s, 1500, rng)
    assert P.shape == (1500, 3) and P.dtype == np.float64
    assert s.is_free(P[:, :2]).all()
    # no step crosses a wall
    assert all(s.segment_free(a, b) for a, b in zip(P[:-1:7, :2], P[7::7, :2]))
    travel, yaw = _window_stats(P)
    assert travel.min() >= 3.0 and travel.max() <= 6.0, (travel.min(), travel.max())
    assert yaw.max() < 60.0


def test_random_trajectory_start_and_determinism():
    s = sim.make_scene(2, "rooms")
    start = s.sample_free_pose(np.random.default_rng(9))
    a = sim.random_trajectory(s, 200, np.random.default_rng(4), start=start)
    b = sim.random_trajectory(s, 200, np.random.default_rng(4), start=start)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], start)
    assert sim.random_trajectory(s, 1, np.random.default_rng(0), start=start).shape == (1, 3)
    with pytest.raises(ValueError, match="not free"):
        sim.random_trajectory(s, 10, np.random.default_rng(0), start=[-100.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="n_frames"):
        sim.random_trajectory(s, 0, np.random.default_rng(0))


def test_random_trajectory_many_cramped_starts_fast():
    import time
    s = sim.make_scene(11, "rooms")
    rng = np.random.default_rng(0)
    sim.random_trajectory(s, 100, rng)
    t0 = time.perf_counter()
    for _ in range(5):
        P = sim.random_trajectory(s, 1000, rng)
        assert s.is_free(P[:, :2]).all()
    assert (time.perf_counter() - t0) / 5 < 0.2  # target 50 ms; loose bound for a loaded machine


def test_rotate_away_and_back():
    p = np.array([1.0, 2.0, 0.3])
    out = sim.rotate_away_and_back(p, 90.0, 10)
    assert out.shape == (21, 3)
    np.testing.assert_array_equal(out[0], p)
    np.testing.assert_array_equal(out[-1], p)
    assert out[10, 2] == pytest.approx(0.3 + np.pi / 2)
    np.testing.assert_array_equal(out[:, :2], np.broadcast_to(p[:2], (21, 2)))


@pytest.mark.parametrize("style", ["rooms", "city", "neon"])
def test_walk_away_and_return(style):
    s = sim.make_scene(3, style)
    p = s.sample_free_pose(np.random.default_rng(2))
    out = sim.walk_away_and_return(s, p, distance=3.0, n_frames_each=40, rng=np.random.default_rng(0))
    assert out.shape == (81, 3)
    np.testing.assert_array_equal(out[0], p)
    np.testing.assert_array_equal(out[-1], p)
    assert s.is_free(out[:, :2]).all()
    assert np.abs(out[-1, 2] - out[-2, 2]) < 0.5            # no 2 pi jump: zero net rotation
    assert np.linalg.norm(out[:, :2] - p[:2], axis=1).max() > 0.5


@pytest.mark.parametrize("style", ["rooms", "countryside"])
def test_loop_trajectory(style):
    s = sim.make_scene(4, style)
    p = s.sample_free_pose(np.random.default_rng(5))
    out = sim.loop_trajectory(s, p, 60, radius=2.0, rng=np.random.default_rng(0))
    assert out.shape == (60, 3)
    np.testing.assert_array_equal(out[0], p)
    np.testing.assert_array_equal(out[-1], p)
    assert s.is_free(out[:, :2]).all()


# ------------------------------------------------------------------------------------------------
# captions

def test_captions_exist_vary_and_are_deterministic():
    s = sim.make_scene(6, "city")
    P = sim.random_trajectory(s, 300, np.random.default_rng(0))
    caps = sim.segment_captions(s, P, np.random.default_rng(1))
    assert len(caps) == 4 and all(isinstance(c, str) and len(c) > 20 for c in caps)
    assert len(set(caps)) > 1
    assert caps == sim.segment_captions(s, P, np.random.default_rng(1))
    assert caps != sim.segment_captions(s, P, np.random.default_rng(2))
    scene_caps = {sim.scene_caption(sim.make_scene(6, st)) for st in sim.STYLES}
    assert len(scene_caps) == len(sim.STYLES)
    assert sim.scene_caption(s) == sim.scene_caption(s)


def test_turn_in_place():
    from camworld.sim import turn_in_place

    p = np.array([1.0, -2.0, 3.0])
    out = turn_in_place(p, np.pi, deg_per_frame=10.0)
    assert out.shape == (18, 3) and (out[:, :2] == p[:2]).all()
    assert out[-1, 2] == p[2] + np.pi and np.all(np.diff(out[:, 2]) > 0)     # unwrapped, never the short way
    np.testing.assert_allclose(out[0, 2], p[2] + np.deg2rad(10.0))           # the start is excluded
    assert turn_in_place(p, -np.deg2rad(4.0), 10.0, min_frames=2).shape == (2, 3)
    assert turn_in_place(p, 0.0, 10.0, min_frames=0).shape == (0, 3)
    with pytest.raises(ValueError, match="theta must be finite"):
        turn_in_place(p, np.nan)
