"""camworld.retrieval.index: the pose index gives exactly what the exhaustive search gives.

Random memories, dense (many frames per square metre, every heading) and sparse (a long walk), of
several sizes, planar and 6-DoF, plus adversarial poses on cell borders, bin borders and the FOV
rule's band edges; every strategy with and without the index, same seed, same picks.
"""

import numpy as np
import pytest

from camworld import geometry
from camworld.memory import MemoryBank, PoseGrid
from camworld.retrieval import STRATEGIES, retrieve
from camworld.retrieval.bench import fold, random_walk
from camworld.retrieval.fov import FovParams, _Edges, fov_candidates, overlap_matrix
from camworld.retrieval.frustum import FrustumParams, frustum_candidates
from camworld.retrieval.frustum import overlap_matrix as frustum_matrix
from camworld.retrieval.index import planar_candidates

P = FovParams()


def _memory(kind: str, M: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    if kind == "dense":                       # a walker folded into a small square: every spot, every side
        return fold(random_walk(M, r), 12.0)
    if kind == "sparse":
        return random_walk(M, r)
    if kind == "uniform":
        return np.c_[r.uniform(-15, 15, (M, 2)), r.uniform(-20, 20, M)]
    # adversarial: positions on a 0.5 m lattice (cell borders), yaws on multiples of 2 pi / 128 (bin
    # borders) and on the parallel band's edges around the targets' yaw
    xy = np.round(r.uniform(-12, 12, (M, 2)) * 2) / 2
    yaw = np.round(r.uniform(-8, 8, M) / (2 * np.pi / 128)) * (2 * np.pi / 128)
    edge = r.random(M) < 0.3
    yaw[edge] = 0.25 + r.choice([-1.0, 1.0], edge.sum()) * np.deg2rad(P.parallel_deg)
    return np.c_[xy, yaw]


def _targets(mem: np.ndarray, seed: int, T: int = 4) -> np.ndarray:
    r = np.random.default_rng(seed + 1000)
    base = mem[r.integers(len(mem))] if r.random() < 0.7 else np.array([0.0, 0.0, 0.25])
    return base + np.c_[np.linspace(0, 0.3, T), np.zeros(T), np.linspace(0, 0.05, T)]


def _grid(mem, seed, steep=None, **kw) -> PoseGrid:
    r = np.random.default_rng(seed + 7)
    kw = {"cell": float(r.choice([0.5, 1.0, 2.0])), "n_bins": int(r.choice([16, 64])),
          "tail_max": int(r.integers(1, 3000)), **kw}
    g = PoseGrid(**kw)
    for j in range(0, len(mem), 997):         # appended in chunks, as a bank does
        g.add(mem[j:j + 997, :2], mem[j:j + 997, 2], None if steep is None else steep[j:j + 997])
    return g


def _brute(mem, tgt, p=P):
    hits = overlap_matrix(mem, tgt, p).sum(1)
    i = np.flatnonzero(hits)
    return i, hits[i]


def test_grid_merges_to_a_full_sort_and_finds_its_frames():
    r = np.random.default_rng(0)
    xy, yaw, steep = r.uniform(-5, 5, (3000, 2)), r.uniform(-9, 9, 3000), r.random(3000) < 0.1
    g = PoseGrid(cell=1.0, n_bins=16, tail_max=100)
    for j in range(0, 3000, 37):
        g.add(xy[j:j + 37], yaw[j:j + 37], steep[j:j + 37])
    keys = g.keys_of(xy, yaw, steep)
    order = np.argsort(keys[: g.n_sorted], kind="stable")
    assert g.n == 3000 and g.n_sorted >= 2900 and g.n_steep == steep.sum()
    np.testing.assert_array_equal(g.keys, keys[: g.n_sorted][order])
    np.testing.assert_array_equal(g.order, order)
    assert g.holds(np.arange(3000), keys).all()
    assert not g.holds(np.arange(3000), keys + 1).any()
    # the occupied cells of a box, row by row
    ix0, ix1, iy0, iy1 = (int(g.cell_index(v)) for v in (-2.0, 1.0, -1.0, 3.0))
    pos, first = g.occupied(ix0, ix1, iy0, iy1)
    ids = g.cells[pos]
    ix, iy = ids // (2 * g.OFFSET), ids % (2 * g.OFFSET)
    assert ((ix >= ix0) & (ix <= ix1) & (iy >= iy0) & (iy <= iy1)).all() and len(ids) == 4 * 5
    assert first.sum() == 4 and np.all(np.diff(ids) > 0)


@pytest.fixture(params=["classify", "few"])
def mode(request, monkeypatch):
    """Force the cell classification (FEW = 0), or leave small neighbourhoods to the direct test."""
    from camworld.retrieval import index

    if request.param == "classify":
        monkeypatch.setattr(index, "FEW", 0)
    return request.param


@pytest.mark.parametrize("kind", ["dense", "sparse", "uniform", "adversarial"])
@pytest.mark.parametrize("M", [300, 6000, 40000])
def test_indexed_fov_candidates_equal_brute_force(kind, M, mode):
    for seed in range(3):
        mem = _memory(kind, M, seed)
        tgt = _targets(mem, seed)
        steep = np.random.default_rng(seed).random(M) < 0.05 if seed == 2 else None
        g = _grid(mem, seed, steep)
        want_i, want_h = _brute(mem, tgt)
        for hits in (True, False):
            got_i, got_h = planar_candidates(g, mem, tgt, P, hits)
            np.testing.assert_array_equal(got_i, want_i)
            if hits:
                np.testing.assert_array_equal(got_h, want_h)
        old_i, old_h = fov_candidates(mem, tgt, P)             # the prefilter path, no index
        np.testing.assert_array_equal(old_i, want_i)
        np.testing.assert_array_equal(old_h, want_h)


def test_indexed_candidates_other_thresholds(mode):
    mem = _memory("dense", 20000, 5)
    g = _grid(mem, 5)
    for params in ({"near": 2.0, "far": 8.0}, {"max_cam_dist": 5.0, "same_view_dist": 6.0},
                   {"parallel_deg": 40.0, "parallel_offset": 1.0}, {"hfov_deg": 90.0}, {"same_view_deg": 0.0}):
        p = FovParams(**params).check()
        tgt = _targets(mem, 5, T=2)
        np.testing.assert_array_equal(planar_candidates(g, mem, tgt, p, False)[0], _brute(mem, tgt, p)[0])


def _six_dof(M: int, seed: int) -> np.ndarray:
    """Cameras over a 14 m square at 0-4 m height, turned, pitched (some steeply) and rolled."""
    r = np.random.default_rng(seed)
    pitch = np.where(r.random(M) < 0.15, r.uniform(-1.5, 1.5, M), r.uniform(-0.4, 0.4, M))
    return geometry.euler_to_extrinsics(*r.uniform(-7, 7, (2, M)), r.uniform(0, 4, M), r.uniform(-4, 4, M), pitch,
                                        r.uniform(-0.5, 0.5, M))


@pytest.mark.parametrize("M", [500, 8000])
def test_indexed_frustum_candidates_equal_brute_force(M, mode):
    fp = FrustumParams().check()
    for seed in range(3):
        ext = _six_dof(M, seed)
        tgt = ext[np.random.default_rng(seed).integers(M, size=3)]
        planar = geometry.extrinsics_to_planar(ext)
        g = _grid(planar, seed, np.abs(ext[:, 2, 2]) > PoseGrid.STEEP_SIN)
        count = frustum_matrix(ext, tgt, fp).sum(1)
        want = np.flatnonzero(count)
        for index in (None, g):
            got, hits = frustum_candidates(ext, tgt, fp, index, hits=True)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(hits, count[want])


def _bank(poses) -> MemoryBank:
    bank = MemoryBank((4, 4, 3), capacity=512)
    for j in range(0, len(poses), 250):
        bank.append(np.zeros((len(poses[j:j + 250]), 4, 4, 3), np.uint8), poses[j:j + 250])
    return bank


@pytest.fixture
def always_index(monkeypatch):
    """Use the index at every memory size (by default small memories take the exhaustive path)."""
    from camworld.retrieval import index, registry

    monkeypatch.setattr(registry, "INDEX_MIN_FRAMES", 0)
    monkeypatch.setattr(index, "FEW", 0)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("kind", ["dense", "sparse", "six-dof"])
def test_every_strategy_same_picks_with_the_index(name, kind, always_index):
    for M, seed in ((400, 0), (5000, 1)):
        if kind == "six-dof":
            poses = _six_dof(M, seed)
            tgt = poses[-2:]
        else:
            poses = _memory(kind, M, seed)
            tgt = _targets(poses, seed)
        bank = _bank(poses)
        mem = bank.extrinsics() if kind == "six-dof" else bank.poses
        times = bank.times
        for k in (2, 8, 20):
            a = retrieve(name, mem, times, tgt, k, np.random.default_rng(seed), index=bank.index)
            b = retrieve(name, mem, times, tgt, k, np.random.default_rng(seed))
            np.testing.assert_array_equal(a, b)


def test_bank_index_follows_appends_and_clear(always_index):
    bank = _bank(_memory("dense", 3000, 3))
    g = bank.index
    assert g.n == 3000
    bank.append(np.zeros((5, 4, 4, 3), np.uint8), np.zeros((5, 3)))
    assert bank.index is g and g.n == 3005
    tgt = np.array([[0.2, 0.0, 0.1]])
    np.testing.assert_array_equal(planar_candidates(bank.index, bank.poses, tgt, P)[0], _brute(bank.poses, tgt)[0])
    bank.clear()
    assert bank.index.n == 0 and bank.index is not g


def test_index_misuse_is_refused(always_index):
    a, b = _bank(_memory("dense", 600, 4)), _bank(_memory("dense", 600, 5))
    tgt = [[0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="does not match mem_poses"):
        retrieve("fov+nonadj", a.poses, a.times, tgt, 4, np.random.default_rng(0), index=b.index)
    stale = a.index
    a.append(np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="covers 600 frames"):
        retrieve("fov+nonadj", a.poses, a.times, tgt, 4, np.random.default_rng(0), index=stale)
    with pytest.raises(ValueError, match="PoseGrid"):
        retrieve("fov", a.poses, a.times, tgt, 4, np.random.default_rng(0), index="grid")


def test_index_check_is_remembered_only_for_the_same_frames(always_index):
    """A passed spot check is not re-run while the index holds the same frames and its spot rows the same
    poses; other poses at those rows, or a grown index, are checked again (and refused if wrong)."""
    from camworld.retrieval import registry

    a, b = _bank(_memory("dense", 600, 4)), _bank(_memory("dense", 600, 5))
    tgt, rng = [[0.0, 0.0, 0.0]], np.random.default_rng(0)
    retrieve("fov+nonadj", a.poses, a.times, tgt, 4, rng, index=a.index)
    assert registry._PASSED[a.index][0] == 600
    with pytest.raises(ValueError, match="does not match mem_poses"):   # b's poses, a's index: spot rows differ
        retrieve("fov+nonadj", b.poses, b.times, tgt, 4, rng, index=a.index)
    for planar in (True, False):            # the same poses as a copy, and as extrinsics: still accepted
        poses = a.poses.copy() if planar else a.extrinsics()
        retrieve("fov+nonadj", poses, a.times, tgt, 4, rng, index=a.index)
    moved = a.poses.copy()
    moved[-1, 0] += 100.0                   # the last frame is a spot row: filed elsewhere now
    with pytest.raises(ValueError, match="does not match mem_poses"):
        retrieve("fov+nonadj", moved, a.times, tgt, 4, rng, index=a.index)
    a.append(np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 3)))
    retrieve("fov+nonadj", a.poses, a.times, tgt, 4, rng, index=a.index)
    assert registry._PASSED[a.index][0] == 601
    grown = a.poses.copy()
    grown[-1, 0] += 100.0                   # the new last row: the check runs again at the new size
    with pytest.raises(ValueError, match="does not match mem_poses"):
        retrieve("fov+nonadj", grown, a.times, tgt, 4, rng, index=a.index)


@pytest.mark.parametrize("kind", ["dense", "adversarial"])
def test_edge_memo_never_changes_an_answer(kind, mode):
    """The index keeps each tested frame's FOV edge directions between queries (``index._EdgeMemo``):
    they must be recomputed whenever the pose passed has another yaw, and kept apart per hfov."""
    from camworld.retrieval import index

    mem = _memory(kind, 20000, 11)
    g = _grid(mem, 11)
    r = np.random.default_rng(11)
    for q in range(6):
        tgt = _targets(mem, 11 + q)
        p = FovParams(hfov_deg=90.0) if q % 3 == 2 else P
        for hits in (True, False):                     # twice each: the second call reads the memo
            got_i, got_h = planar_candidates(g, mem, tgt, p, hits)
            want_i, want_h = _brute(mem, tgt, p)
            np.testing.assert_array_equal(got_i, want_i)
            if hits:
                np.testing.assert_array_equal(got_h, want_h)
        # the same grid, some yaws moved by one or a few ulps (the same buckets): the memo must notice
        moved = mem.copy()
        pick = r.random(len(mem)) < 0.5
        moved[pick, 2] = np.nextafter(moved[pick, 2], np.inf * r.choice([-1.0, 1.0], pick.sum()))
        idx = np.flatnonzero(r.random(len(mem)) < 0.3)
        e, ref = index._edges(g, moved, idx, p), _Edges(moved[idx], p)          # bit for bit what the rule computes
        everything = np.arange(len(idx))
        for a, b in ((e.x, ref.x), (e.yaw, ref.yaw), (e.lx, ref.lx), (e.ly, ref.ly), (e.right(everything),
                                                                                         ref.right(everything))):
            np.testing.assert_array_equal(np.asarray(a).view(np.int64), np.asarray(b).view(np.int64))
        for hits in (True, False):
            got_i, got_h = planar_candidates(g, moved, tgt, p, hits)
            want_i, want_h = _brute(moved, tgt, p)
            np.testing.assert_array_equal(got_i, want_i)
            if hits:
                np.testing.assert_array_equal(got_h, want_h)
    memo = index._MEMOS[g]
    assert len(memo) == 2 and all(len(m.a) >= len(mem) for m in memo.values())


def test_sort_frames_int32_shortcut_bounds():
    """Frame ids are sorted as int32 only while every id fits (ids < n <= int32 max); the answer is np.sort's."""
    from camworld.retrieval.index import _sort_frames

    top = np.iinfo(np.int32).max
    for n, ids in ((top, [top - 1, 0, 5, top - 2]), (top + 2, [top + 1, top, 3, 0]), (10, [9, 0, 9, 4])):
        a = np.array(ids, np.int64)
        got = _sort_frames(a, n)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.sort(a))


def test_ranges_shortcut_equals_memory_ranges():
    from camworld.memory import ranges
    from camworld.retrieval.index import _ranges

    r = np.random.default_rng(5)
    for n in (0, 1, 2, 7, 500):
        starts, counts = r.integers(0, 10**6, n), r.integers(0, 4, n) * r.integers(0, 30, n)   # many zeros
        got = _ranges(starts, counts)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ranges(starts, counts))
    np.testing.assert_array_equal(_ranges(np.array([5, 9]), np.array([0, 0])), np.zeros(0, np.int64))
