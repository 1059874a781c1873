"""Tests for camworld.geometry: pose conventions, intrinsics, FOV rays, interpolation, B-splines."""

import numpy as np
import pytest

from camworld import geometry as g


def _rand_poses(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-20, 20, n), rng.uniform(-20, 20, n), rng.uniform(-np.pi, np.pi, n)], -1)


def test_planar_extrinsics_round_trip():
    p = _rand_poses(100)
    E = g.planar_to_extrinsics(p)
    assert E.shape == (100, 3, 4)
    back = g.extrinsics_to_planar(E)
    np.testing.assert_allclose(back[:, :2], p[:, :2], atol=1e-12)
    np.testing.assert_allclose(g.wrap_angle(back[:, 2] - p[:, 2]), 0, atol=1e-12)
    np.testing.assert_allclose(E[:, 2, 3], g.CAMERA_HEIGHT)


def test_extrinsics_conventions():
    R = g.planar_to_extrinsics([0.0, 0.0, 0.0])[:, :3]
    np.testing.assert_allclose(R[:, 2], [1, 0, 0], atol=1e-12)   # camera z (forward) along world +x at yaw 0
    np.testing.assert_allclose(R[:, 1], [0, 0, -1], atol=1e-12)  # camera y (down) is world -z
    np.testing.assert_allclose(R[:, 0], [0, -1, 0], atol=1e-12)  # camera x (right) is world -y
    Rs = g.planar_to_extrinsics(_rand_poses(20))[:, :, :3]
    np.testing.assert_allclose(Rs @ np.swapaxes(Rs, 1, 2), np.broadcast_to(np.eye(3), (20, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(Rs), 1.0, atol=1e-12)
    # positive yaw turns left: at yaw = +90 degrees the camera looks along +y
    np.testing.assert_allclose(g.planar_to_extrinsics([0, 0, np.pi / 2])[:, 2], [0, 1, 0], atol=1e-12)


def test_bad_poses_raise():
    with pytest.raises(ValueError, match="finite"):
        g.planar_to_extrinsics([0.0, np.nan, 0.0])
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        g.planar_to_extrinsics(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        g.extrinsics_to_planar(np.zeros((3, 3)))


def test_intrinsics_project_edges():
    K = g.intrinsics(64, 64)
    assert K.shape == (3, 3) and K[0, 2] == 32 and K[1, 2] == 32
    half = np.deg2rad(g.DEFAULT_HFOV_DEG) / 2
    # a point on the FOV edge projects to the image border (u = 0 or W)
    for sign, u_expect in ((1, 64.0), (-1, 0.0)):
        x = np.array([sign * np.tan(half), 0.0, 1.0])
        u = (K @ x)[0] / (K @ x)[2]
        assert u == pytest.approx(u_expect)
    with pytest.raises(ValueError):
        g.intrinsics(0, 64)
    with pytest.raises(ValueError):
        g.focal_from_hfov(64, 180.0)


def test_pixel_rays_centre_and_edges():
    r = g.pixel_rays(4, 6)
    assert r.shape == (4, 6, 3) and np.all(r[..., 2] == 1)
    f = g.focal_from_hfov(6)
    assert r[0, 0, 0] == pytest.approx((0.5 - 3) / f)
    np.testing.assert_allclose(r[:, :3, 0], -r[:, :2:-1, 0])  # symmetric about the centre


def test_fov_edge_rays():
    o, left, right = g.fov_edge_rays(np.array([[1.0, 2.0, 0.0]]))
    half = np.deg2rad(g.DEFAULT_HFOV_DEG) / 2
    np.testing.assert_allclose(o, [[1.0, 2.0]])
    np.testing.assert_allclose(left, [[np.cos(half), np.sin(half)]])    # left = counter-clockwise
    np.testing.assert_allclose(right, [[np.cos(half), -np.sin(half)]])
    np.testing.assert_allclose(np.linalg.norm(left, axis=-1), 1.0)
    # the world direction of the image's left edge ray agrees with the extrinsics
    E = g.planar_to_extrinsics([0.0, 0.0, 0.7])
    d = E[:, :3] @ np.array([-np.tan(half), 0.0, 1.0])
    _, left, _ = g.fov_edge_rays([0.0, 0.0, 0.7])
    np.testing.assert_allclose(d[:2] / np.linalg.norm(d[:2]), left, atol=1e-12)


def test_interpolate_ends_exactly_shortest_arc():
    a = np.array([0.1, -0.3, 3.0])
    b = np.array([2.7, 0.3, -3.0])  # shortest arc crosses +-pi: +0.283 rad, not -6 rad
    out = g.interpolate_poses(a, b, 7)
    assert out.shape == (7, 3)
    np.testing.assert_array_equal(out[-1], b)
    steps = np.diff(np.concatenate([[a[2]], out[:-1, 2]]))
    assert np.all(steps > 0) and np.all(np.abs(steps) < 0.1)
    out = g.interpolate_poses(a, b, 5, include_start=True)
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[-1], b)
    with pytest.raises(ValueError):
        g.interpolate_poses(a, b, 0)


def test_relative_extrinsics_rigid_invariance():
    p = _rand_poses(10, 1)
    E = g.planar_to_extrinsics(p)
    rel = g.relative_extrinsics(E, E[0])
    np.testing.assert_allclose(rel[0], np.eye(4)[:3], atol=1e-12)
    # apply the same rigid transform (rotation about z + translation) to every camera
    th = 1.1
    T = np.eye(4)
    T[:3, :3] = [[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]]
    T[:3, 3] = [3.0, -2.0, 0.5]
    E2 = (T @ g.to_homogeneous(E))[:, :3]
    np.testing.assert_allclose(g.relative_extrinsics(E2, E2[0]), rel, atol=1e-10)
    # batched reference broadcasting
    rel_b = g.relative_extrinsics(np.stack([E, E]), np.stack([E[0], E[1]])[:, None])
    np.testing.assert_allclose(rel_b[0], rel, atol=1e-12)
    np.testing.assert_allclose(rel_b[1], g.relative_extrinsics(E, E[1]), atol=1e-12)


def test_bspline_endpoints_and_shape():
    c = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0], [4.0, 4.0]])
    s = g.bspline(c, 50)
    assert s.shape == (50, 2)
    np.testing.assert_array_equal(s[0], c[0])
    np.testing.assert_array_equal(s[-1], c[-1])
    assert np.linalg.norm(np.diff(s, axis=0), axis=1).max() < 0.5  # smooth, no jumps
    lo, hi = c.min(0), c.max(0)
    assert np.all(s >= lo - 1e-9) and np.all(s <= hi + 1e-9)        # convex hull property
    with pytest.raises(ValueError):
        g.bspline(c[:1], 10)


def test_euler_extrinsics_conventions():
    p = _rand_poses(30, seed=3)
    np.testing.assert_array_equal(g.euler_to_extrinsics(p[:, 0], p[:, 1], g.CAMERA_HEIGHT, p[:, 2]),
                                  g.planar_to_extrinsics(p))                       # level at eye height = planar
    up = g.euler_to_extrinsics(0.0, 0.0, 2.0, 0.0, pitch=0.3)
    np.testing.assert_allclose(up[:, 2], [np.cos(0.3), 0.0, np.sin(0.3)], atol=1e-12)   # optical axis tilts up
    np.testing.assert_allclose(up[:, 3], [0.0, 0.0, 2.0])
    rolled = g.euler_to_extrinsics(0.0, 0.0, 2.0, 0.0, roll=0.2)
    assert rolled[2, 0] < 0                                                        # its right side dips down
    np.testing.assert_allclose(rolled[:, 2], [1.0, 0.0, 0.0], atol=1e-12)          # roll keeps the axis
    r = np.random.default_rng(0)
    E = g.euler_to_extrinsics(*r.normal(size=(3, 50)), r.uniform(-3, 3, 50), r.uniform(-1.5, 1.5, 50), r.normal(size=50))
    R = E[:, :, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    back = g.extrinsics_to_planar(E)                                               # ground position and heading
    np.testing.assert_allclose(back[:, :2], E[:, :2, 3])
    np.testing.assert_allclose(np.cos(back[:, 2]) * E[:, 1, 2], np.sin(back[:, 2]) * E[:, 0, 2], atol=1e-12)


def test_as_extrinsics_validates():
    E = g.planar_to_extrinsics(_rand_poses(4))
    np.testing.assert_array_equal(g.as_extrinsics(g.to_homogeneous(E)), E)        # (4, 4) -> (3, 4)
    for bad, msg in ((np.zeros((4, 3, 3)), "shape"), (E * [1, 1, -1, 1], "det"), (E * 2, "orthonormal")):
        with pytest.raises(ValueError, match=msg):
            g.as_extrinsics(bad)
    H = g.to_homogeneous(E)
    H[0, 3, 0] = 1.0
    with pytest.raises(ValueError, match="last row"):
        g.as_extrinsics(H)
    E2 = E.copy()
    E2[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        g.as_extrinsics(E2, "target_poses")
    th, tv = g.frustum_tans(90.0, aspect=2.0)
    assert th == pytest.approx(1.0) and tv == pytest.approx(0.5)
