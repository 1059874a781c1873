"""camworld.retrieval: the FOV rule on hand-made cases, every strategy's contract, ground-truth co-visibility."""

import numpy as np
import pytest

from camworld.retrieval import STRATEGIES, covisibility, fov_overlap, retrieve
from camworld.retrieval.metrics import Episode, make_query, oracle, score
from camworld.retrieval.strategies import runs

# ------------------------------------------------------------------ the FOV rule (paper Fig. 4)

T0 = [0.0, 0.0, 0.0]  # target camera at the origin looking along +x

CASES = {
    # name: (memory pose, expected overlap with T0)
    "identical pose": ([0.0, 0.0, 0.0], True),
    "slightly moved and turned": ([0.3, -0.2, 0.2], True),
    "parallel, side by side": ([0.0, 1.5, 0.0], True),
    "one behind the other": ([-3.0, 0.0, 0.0], True),
    "one ahead of the other": ([3.0, 0.0, 0.0], True),
    "converging from the side": ([4.0, -4.0, np.pi / 2], True),
    "back to back": ([-1.0, 0.0, np.pi], False),
    "looking away, same spot": ([0.0, 0.0, np.pi / 2 + 0.6], False),
    "facing each other (paper's known miss)": ([6.0, 0.0, np.pi], False),
    "too far, same direction": ([0.0, 40.0, 0.0], False),
    "too far, converging": ([60.0, -60.0, np.pi / 2], False),
    "parallel but far to the side": ([0.0, 10.0, 0.0], False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fov_rule_hand_made(name):
    pose, expected = CASES[name]
    got = fov_overlap(np.array([pose]), np.array([T0]))
    assert got.shape == (1, 1) and got.dtype == bool
    assert bool(got[0, 0]) is expected, name


def test_fov_rule_thresholds_matter():
    m = np.array([[4.0, -4.0, np.pi / 2]])  # crossing about 4-6 m ahead of the target
    assert fov_overlap(m, [T0])[0, 0]
    assert not fov_overlap(m, [T0], far=2.0, max_cam_dist=20.0)[0, 0]     # crossing too far
    assert not fov_overlap(m, [T0], near=10.0, far=20.0)[0, 0]              # crossing too near
    with pytest.raises(ValueError, match="near < far"):
        fov_overlap(m, [T0], near=5.0, far=1.0)


def test_fov_overlap_any_target_and_shapes():
    mem = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, np.pi]])
    tgt = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, np.pi]])
    ov = fov_overlap(mem, tgt)
    assert ov.shape == (2, 2)
    assert ov[0, 0] and ov[1, 1] and not ov[0, 1] and not ov[1, 0]
    assert fov_overlap(np.zeros((0, 3)), tgt).shape == (0, 2)


# ------------------------------------------------------------------ every strategy's contract


def _memory(M=300, seed=0):
    rng = np.random.default_rng(seed)
    heading = np.cumsum(rng.normal(0, 0.15, M))
    xy = np.cumsum(0.3 * np.stack([np.cos(heading), np.sin(heading)], -1), 0)
    poses = np.concatenate([xy, heading[:, None]], 1)
    times = np.arange(M, dtype=np.float64)
    targets = poses[-1] + np.array([[0.2, 0.0, 0.05], [0.4, 0.0, 0.1]])
    return poses, times, targets


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_strategy_contract(name, k):
    poses, times, targets = _memory()
    idx = retrieve(name, poses, times, targets, k, np.random.default_rng(0))
    assert idx.dtype == np.int64 and idx.ndim == 1
    assert 1 <= len(idx) <= k
    assert len(np.unique(idx)) == len(idx)
    assert idx.min() >= 0 and idx.max() < len(poses)
    assert int(np.argmax(times)) in idx                      # the newest frame, always
    assert np.all(np.diff(times[idx]) >= 0)                  # sorted by time


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_deterministic_and_unsorted_clock(name):
    poses, times, targets = _memory()
    a = retrieve(name, poses, times, targets, 8, np.random.default_rng(7))
    b = retrieve(name, poses, times, targets, 8, np.random.default_rng(7))
    assert np.array_equal(a, b)
    # a clock that is not in index order (as in training, where frames after the segment count as
    # older): the newest is argmax, results stay sorted by time
    perm = np.random.default_rng(1).permutation(len(times))
    t2 = times[perm]
    idx = retrieve(name, poses, t2, targets, 8, np.random.default_rng(0))
    assert int(np.argmax(t2)) in idx and np.all(np.diff(t2[idx]) >= 0) and len(idx) <= 8


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_small_and_empty_memory(name):
    rng = np.random.default_rng(0)
    assert retrieve(name, np.zeros((0, 3)), np.zeros(0), [[0, 0, 0]], 4, rng).shape == (0,)
    assert retrieve(name, [[1.0, 2.0, 0.3]], [5.0], [[0, 0, 0]], 4, rng).tolist() == [0]
    two = retrieve(name, [[0, 0, 0], [0.1, 0, 0]], [0.0, 1.0], [[0.2, 0, 0]], 4, rng)
    assert 1 in two and len(two) <= 2


def test_retrieve_errors():
    poses, times, targets = _memory(20)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown retrieval strategy.*fov\\+nonadj"):
        retrieve("nope", poses, times, targets, 4, rng)
    with pytest.raises(ValueError, match="k must be >= 1"):
        retrieve("fov", poses, times, targets, 0, rng)
    with pytest.raises(ValueError, match="mem_times must be"):
        retrieve("fov", poses, times[:-1], targets, 4, rng)
    with pytest.raises(ValueError, match="mem_poses must be"):
        retrieve("fov", poses[:, :2], times, targets, 4, rng)
    with pytest.raises(ValueError, match="target_poses must be"):
        retrieve("fov", poses, times, np.zeros((0, 3)), 4, rng)
    bad = poses.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf at rows \\[3\\]"):
        retrieve("recent", bad, times, targets, 4, rng)
    with pytest.raises(ValueError, match="target_poses contain NaN"):
        retrieve("fov", poses, times, [[0, np.nan, 0]], 4, rng)
    with pytest.raises(ValueError, match="fill must be one of"):
        retrieve("fov+nonadj", poses, times, targets, 4, rng, fill="everything")
    from camworld.memory import PoseGrid

    grid = PoseGrid()
    grid.add(poses[:, :2], poses[:, 2])
    for value in (np.nan, np.inf):          # with an index too (times trusted like poses, but not NaN / +inf)
        t = times.copy()
        t[5] = value
        for index in (None, grid):
            with pytest.raises(ValueError, match="mem_times contain NaN or inf at rows \\[5\\]"):
                retrieve("fov+nonadj", poses, t, targets, 4, rng, index=index)


def test_baselines_pick_what_they_say():
    poses, times, targets = _memory(100)
    rng = np.random.default_rng(0)
    assert retrieve("recent", poses, times, targets, 5, rng).tolist() == [95, 96, 97, 98, 99]
    assert retrieve("first", poses, times, targets, 5, rng).tolist() == [0, 99]
    assert retrieve("framepack", poses, times, targets, 5, rng).tolist() == [84, 92, 96, 98, 99]
    fr = retrieve("first+random", poses, times, targets, 5, rng)
    assert fr[0] == 0 and fr[-1] == 99 and len(fr) == 5


def test_nonadj_one_frame_per_run():
    # two separate visits of the same spot: frames 0-9 and 50-59 look at the target; 60-69 walk away
    poses = np.zeros((70, 3))
    poses[:10, 0] = np.linspace(-1, 0, 10)
    poses[10:50] = [30.0, 30.0, 0.0]
    poses[50:60, 0] = np.linspace(-1, 0, 10)
    poses[60:70] = [[-30.0 - i, 0.0, np.pi] for i in range(10)]
    times = np.arange(70.0)
    tgt = np.array([[0.5, 0.0, 0.0]])
    assert runs(np.r_[0:10, 50:60], times, poses).tolist() == [0] * 10 + [1] * 10
    idx = retrieve("fov+nonadj", poses, times, tgt, 10, np.random.default_rng(0), fill="none")
    assert len(idx) == 3 and ((idx < 10).sum(), ((idx >= 50) & (idx < 60)).sum()) == (1, 1)
    filled = retrieve("fov+nonadj", poses, times, tgt, 10, np.random.default_rng(0))
    assert len(filled) == 10 and set(filled[:-1].tolist()) <= set(range(10)) | set(range(50, 60))


def test_one_per_run_matches_run_ids():
    """``_one_per_run`` finds run starts and the newest frame's run without run ids (``runs``): the same
    frames as picking through the ids, with the newest at a run's start, middle or end, alone, or absent."""
    from camworld.retrieval.registry import _validate
    from camworld.retrieval.strategies import _one_per_run

    r = np.random.default_rng(3)
    for trial in range(60):
        M = int(r.integers(2, 400))
        poses = np.c_[np.cumsum(r.choice([0.1, 0.1, 3.0], M)), np.zeros(M), np.zeros(M)]
        times = np.cumsum(r.choice([1.0, 1.0, 5.0], M))
        cand = np.flatnonzero(r.random(M) < r.uniform(0.05, 1.0))
        if len(cand) == 0:
            continue
        newest = int(r.choice(cand)) if trial % 4 else int(r.integers(M))     # a candidate, or any frame
        times[newest] = times.max() + 1.0
        q = _validate(poses, times, [[0.0, 0.0, 0.0]], 8, np.random.default_rng(trial))
        assert q.newest == newest
        rid = runs(cand, times, poses)
        starts = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]])
        lengths = np.diff(np.r_[starts, len(cand)])
        reps = cand[starts + (np.random.default_rng(trial).random(len(starts)) * lengths).astype(np.int64)]
        own = rid[cand == newest]
        want = np.delete(reps, own[0]) if len(own) else reps
        np.testing.assert_array_equal(_one_per_run(q, cand, 1.0, 1.0), want)


def test_coverage_prefers_complementary_views():
    # target looks along +x; memory: many near-duplicates of one view and one view of the other half
    tgt = np.array([[0.0, 0.0, 0.0]])
    dup = np.array([[0.0, 0.0, 0.35 + 0.001 * i] for i in range(20)])       # left half, repeated
    other = np.array([[0.0, 0.0, -0.35]])                                   # right half
    away = np.array([[0.0, 0.0, np.pi]])                                    # newest, looking away
    poses = np.concatenate([dup, other, away])
    times = np.arange(len(poses), dtype=np.float64)
    idx = retrieve("coverage", poses, times, tgt, 3, np.random.default_rng(0))
    assert 20 in idx and 21 in idx and len(idx) == 3


def test_latency_scales(benchmark=None):
    """fov+nonadj over 200k random-walk frames in well under a second (vectorised, no Python loop)."""
    import time

    from camworld.retrieval.bench import random_walk

    poses = random_walk(200_000, np.random.default_rng(0))
    times = np.arange(len(poses), dtype=np.float64)
    t0 = time.perf_counter()
    retrieve("fov+nonadj", poses[:-4], times[:-4], poses[-4:], 20, np.random.default_rng(0))
    assert time.perf_counter() - t0 < 0.5


# ------------------------------------------------------------------ ground-truth co-visibility

sim = pytest.importorskip("camworld.sim")


def test_covis_self_is_one_and_sky_ignored():
    scene = sim.make_scene(3, "countryside")
    poses = np.stack([scene.sample_free_pose(np.random.default_rng(i)) for i in range(3)])
    _, depth = sim.render(scene, poses)
    c = covisibility(depth, poses, depth, poses)
    assert np.allclose(np.diag(c), 1.0)
    assert ((c >= 0) & (c <= 1)).all()


def _wall_pair():
    """Two cameras in an indoor scene facing the same wall from its two sides."""
    scene = sim.make_scene(0, "rooms")
    W, ox, oy, cell = scene.wall, scene.origin[0], scene.origin[1], scene.cell
    for iy in range(2, W.shape[0] - 2):
        for ix in range(4, W.shape[1] - 4):
            # a vertical wall run (in y) at least 2 cells thick with free space 1-2 m either side
            if W[iy, ix] and W[iy, ix + 1] and not W[iy, ix - 1] and not W[iy, ix + 2]:
                y = oy + (iy + 0.5) * cell
                a = np.array([ox + (ix - 2 + 0.5) * cell, y, 0.0])       # west of the wall, looking east
                b = np.array([ox + (ix + 3 + 0.5) * cell, y, np.pi])     # east of the wall, looking west
                if scene.is_free(a[None, :2], 0.3).all() and scene.is_free(b[None, :2], 0.3).all():
                    return scene, np.stack([a, b])
    pytest.skip("no suitable wall in this scene")


def test_covis_wall_between_cameras_is_zero():
    scene, poses = _wall_pair()
    _, depth = sim.render(scene, poses)
    c = covisibility(depth, poses, depth, poses)
    assert c[0, 1] == 0.0 and c[1, 0] == 0.0
    assert c[0, 0] == 1.0 and c[1, 1] == 1.0


def test_covis_nearby_views_overlap():
    scene = sim.make_scene(5, "city")
    p = scene.sample_free_pose(np.random.default_rng(0))
    poses = np.stack([p, p + [0.05, 0.0, 0.05], p + [0.0, 0.0, np.pi]])
    _, depth = sim.render(scene, poses)
    c = covisibility(depth, poses, depth, poses)
    assert c[0, 1] > 0.7 and c[0, 2] < 0.1


def test_metrics_on_a_short_trajectory():
    scene = sim.make_scene(1, "rooms")
    poses = sim.random_trajectory(scene, 400, np.random.default_rng(0))[::4]
    _, depth = sim.render(scene, poses)
    ep = Episode(poses, depth, indoor=True)
    q = make_query(ep, 80, 4)
    assert q.seen.shape[0] == 80 and q.covis[q.newest] > 0
    sel = retrieve("coverage", poses[:80], np.arange(80.0), poses[80:84], 6, np.random.default_rng(0))
    s = score(ep, q, sel, 6)
    assert 0 <= s["coverage"] <= 1 and s["n"] == len(sel)
    best = score(ep, q, oracle(q, 6), 6)
    assert best["coverage"] >= s["coverage"] - 1e-9


def test_fill_policies_and_sampling_helpers():
    from camworld.retrieval.strategies import _newest_order, _random_others, _validate

    poses, times, targets = _memory(60)
    far_tgt = [[500.0, 500.0, 0.0]]                          # no FOV candidate at all
    rng = np.random.default_rng(0)
    assert retrieve("fov+nonadj", poses, times, far_tgt, 6, rng).tolist() == [59]
    assert retrieve("fov+nonadj", poses, times, far_tgt, 6, rng, fill="recent").tolist() == [54, 55, 56, 57, 58, 59]
    assert len(retrieve("fov+random", poses, times, far_tgt, 6, rng, fill="random")) == 6
    # the samplers never return the newest or an excluded frame, and return as many as they can
    for trial in range(200):
        r = np.random.default_rng(trial)
        M = int(r.integers(2, 30))
        q = _validate(np.zeros((M, 3)), r.permutation(M).astype(float), [[0, 0, 0]], 5, r)
        ex = r.choice(M, size=int(r.integers(0, M)), replace=False)
        n = int(r.integers(0, M + 2))
        allowed = set(range(M)) - set(ex.tolist()) - {q.newest}
        out = _random_others(q, n, exclude=ex)
        assert set(out.tolist()) <= allowed and len(set(out.tolist())) == len(out) == min(n, len(allowed))
        assert _newest_order(q, n, exclude=ex).tolist() == [i for i in np.argsort(-q.times) if i in allowed][:n]
