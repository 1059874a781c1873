"""The optional compiled kernels (``camworld.retrieval._kernels``, numba) against the numpy path and the
exhaustive search: the same candidates, hits and picks, bit for bit; the ``CAMWORLD_NO_NUMBA`` switch."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from camworld.memory import PoseGrid
from camworld.retrieval import _kernels, index, retrieve
from camworld.retrieval.fov import FovParams, overlap_matrix
from camworld.retrieval.index import planar_candidates
from camworld.retrieval.strategies import _same_run

from test_index import _grid, _memory, _targets

P = FovParams()


@pytest.fixture
def nb():
    """The compiled kernels (skips without numba); restores the process's setting after the test."""
    pytest.importorskip("numba")
    prev = _kernels.set_enabled(True)
    k = _kernels.kernels()
    if k is None:
        _kernels.set_enabled(prev)
        pytest.skip(f"compiled kernels off ({_kernels.ENV} set)")
    yield k
    _kernels.set_enabled(prev)


def _numpy_path(fn, *a):
    prev = _kernels.set_enabled(False)
    try:
        return fn(*a)
    finally:
        _kernels.set_enabled(prev)


def _brute(mem, tgt, p=P):
    hits = overlap_matrix(mem, tgt, p).sum(1)
    i = np.flatnonzero(hits)
    return i, hits[i]


@pytest.mark.parametrize("few", [False, True])
@pytest.mark.parametrize("kind", ["dense", "sparse", "uniform", "adversarial"])
def test_compiled_equals_numpy_equals_brute_force(kind, few, nb, monkeypatch):
    if not few:
        monkeypatch.setattr(index, "FEW", 0)         # force the classification
    for M, seed in ((300, 0), (6000, 1), (30000, 2)):
        mem = _memory(kind, M, seed)
        tgt = _targets(mem, seed)
        steep = np.random.default_rng(seed).random(M) < 0.05 if seed == 2 else None
        g = _grid(mem, seed, steep)
        want_i, want_h = _brute(mem, tgt)
        for hits in (True, False):
            for _ in range(2):                        # the second call reads the edge memo
                got_i, got_h = planar_candidates(g, mem, tgt, P, hits)
                np_i, np_h = _numpy_path(planar_candidates, g, mem, tgt, P, hits)
                np.testing.assert_array_equal(got_i, want_i)
                np.testing.assert_array_equal(np_i, want_i)
                assert got_i.dtype == np_i.dtype == np.int64
                if hits:
                    np.testing.assert_array_equal(got_h, want_h)
                    np.testing.assert_array_equal(np_h, want_h)
                    assert got_h.dtype == np.int64
                else:
                    assert got_h is None and np_h is None


def test_compiled_other_thresholds_and_moved_yaws(nb, monkeypatch):
    monkeypatch.setattr(index, "FEW", 0)
    mem = _memory("adversarial", 20000, 5)
    g = _grid(mem, 5)
    r = np.random.default_rng(5)
    for q, params in enumerate(({}, {"near": 2.0, "far": 8.0}, {"near": 0.0}, {"max_cam_dist": 5.0, "same_view_dist": 6.0},
                                {"parallel_deg": 40.0, "parallel_offset": 1.0}, {"hfov_deg": 90.0},
                                {"same_view_deg": 0.0}, {"parallel_deg": 0.0})):
        p = FovParams(**params).check()
        tgt = _targets(mem, 5 + q, T=1 + q % 4)
        for m in (mem, _moved(mem, r)):               # yaws a few ulps off: the memo must notice
            want = _brute(m, tgt, p)
            for hits in (True, False):
                got = planar_candidates(g, m, tgt, p, hits)
                np.testing.assert_array_equal(got[0], want[0])
                if hits:
                    np.testing.assert_array_equal(got[1], want[1])


def _moved(mem, r):
    m = mem.copy()
    pick = r.random(len(m)) < 0.5
    m[pick, 2] = np.nextafter(m[pick, 2], np.inf * r.choice([-1.0, 1.0], pick.sum()))
    return m


def test_compiled_rule_bit_for_bit_on_band_edges(nb):
    """The exact rule on every frame against targets whose edges are (nearly) parallel to the memory's,
    at exactly the parallel band's edge and a few ulps either side: ``u x v`` lands on ``sin_par``."""
    r = np.random.default_rng(3)
    T, M = 3, 20000
    tgt = np.c_[r.uniform(-2, 2, (T, 2)), r.uniform(-4, 4, T)]
    par = np.deg2rad(P.parallel_deg)
    yaw = tgt[r.integers(T, size=M), 2] + r.choice([-par, par, 0.0, np.pi], M)
    for _ in range(3):
        j = r.random(M) < 0.5
        yaw[j] = np.nextafter(yaw[j], r.choice([-np.inf, np.inf], j.sum()))
    xy = np.round(r.uniform(-15, 15, (M, 2)) * 4) / 4            # on a lattice: exact zeros in the cross products
    xy[: M // 10] = tgt[r.integers(T, size=M // 10), :2] + r.choice([0.0, 0.5, 1.0], (M // 10, 2))
    mem = np.ascontiguousarray(np.c_[xy, yaw])
    half = float(np.deg2rad(P.hfov_deg) / 2.0)
    memo = index._EdgeMemo(half)
    memo.reserve(M)
    memo.fill(np.arange(M), mem[:, 2])
    tl = np.array([[np.cos(float(w) + half), np.sin(float(w) + half)] for w in tgt[:, 2]])
    tr = np.array([[np.cos(float(w) - half), np.sin(float(w) - half)] for w in tgt[:, 2]])
    empty = np.zeros(0, np.int64)
    args = (P.near, P.far, P.parallel_offset, np.sin(np.deg2rad(P.parallel_deg)), P.max_cam_dist ** 2,
            P.same_view_dist ** 2, np.deg2rad(P.same_view_deg))
    idx, cnt, stale = nb.rule(mem, memo.a, np.arange(M), tgt, tl, tr, empty, empty, True, *args)
    assert len(stale) == 0
    order = np.argsort(idx)
    want_i, want_h = _brute(mem, tgt)
    np.testing.assert_array_equal(idx[order], want_i)
    np.testing.assert_array_equal(cnt[order], want_h)
    idx, cnt, _ = nb.rule(mem, memo.a, np.arange(M), tgt, tl, tr, empty, empty, False, *args)
    np.testing.assert_array_equal(np.sort(idx), want_i)
    assert (cnt == 1).all()


def test_compiled_classification_matches_numpy(nb):
    """The states may differ only where a margin-sized rounding decides (none on these memories), and the
    runs' frames are exactly numpy's for the same states."""
    for kind, seed in (("dense", 0), ("uniform", 1), ("adversarial", 2)):
        mem = _memory(kind, 30000, seed)
        g = _grid(mem, seed, np.random.default_rng(seed).random(len(mem)) < 0.05)
        tgt = np.ascontiguousarray(_targets(mem, seed))
        reach = max(P.max_cam_dist, P.same_view_dist)
        cells = index._Cells(g, tgt[:, :2], reach)
        half = np.deg2rad(P.hfov_deg) / 2.0
        ang = np.concatenate([tgt[:, 2] + half, tgt[:, 2] - half])
        for hits in (True, False):
            with np.errstate(invalid="ignore", over="ignore"):
                want = index._planar_states(g, cells, tgt, P, hits)
                got = nb.planar_states(cells.x0, cells.x1, cells.y0, cells.y1, cells.border, tgt, np.cos(ang),
                                       np.sin(ang), hits, g.n_steep > 0, g.n_bins, half, np.deg2rad(P.same_view_deg),
                                       np.deg2rad(P.parallel_deg), P.near, P.far, P.max_cam_dist, P.parallel_offset,
                                       P.same_view_dist, reach + index.EPS_POS)
            assert got.shape == want.shape
            assert np.mean(got != want) <= 1e-3
            st, lo, n = index._runs(g, cells, want)
            t, s = st == index.TEST, st >= index.SURE
            test, sure, sure_n = nb.gather(want.astype(np.int64), cells.row_start, g.cells.take(cells.pos), cells.pos,
                                           g.cell_start, g.bins_per_cell, g.keys, g.order)
            np.testing.assert_array_equal(test, g.order.take(index._ranges(lo[t], n[t])))
            np.testing.assert_array_equal(sure, g.order.take(index._ranges(lo[s], n[s])))
            np.testing.assert_array_equal(sure_n, np.repeat(st[s], n[s]))


def test_compiled_same_run_equals_numpy(nb):
    r = np.random.default_rng(4)
    M = 5000
    poses = np.c_[np.cumsum(r.choice([0.0, 0.5, 1.0, 1.0 + 1e-12], (M, 2)), 0), r.uniform(-3, 3, M)]
    pos3 = np.c_[poses[:, :2], r.choice([0.0, 0.3], M)]
    times = np.cumsum(r.choice([0.5, 1.0, np.nextafter(1.0, 2.0), 2.0], M))
    idx = np.unique(r.integers(0, M, 3000))
    for dt, step, positions in ((1.0, 1.0, None), (1.0, 0.5, None), (2.0, 1.5, pos3), (1, 1, None)):
        got = _same_run(idx, times, poses, dt, step, positions)
        want = _numpy_path(_same_run, idx, times, poses, dt, step, positions)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, want)
    assert len(_same_run(idx[:1], times, poses, 1.0, 1.0)) == 0


@pytest.mark.parametrize("name", ["fov", "fov+nonadj", "fov+nonadj+far"])
def test_compiled_picks_equal_numpy_picks(name, nb, monkeypatch):
    from camworld.retrieval import registry

    monkeypatch.setattr(registry, "INDEX_MIN_FRAMES", 0)
    mem = _memory("dense", 20000, 8)
    g = _grid(mem, 8)
    times = np.arange(len(mem), dtype=np.float64)
    tgt = _targets(mem, 8)
    for k in (2, 8, 20):
        a = retrieve(name, mem, times, tgt, k, np.random.default_rng(k), index=g)
        b = _numpy_path(retrieve, name, mem, times, tgt, k, np.random.default_rng(k), g)
        c = _numpy_path(retrieve, name, mem, times, tgt, k, np.random.default_rng(k))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_env_switch_and_missing_numba_give_the_numpy_path(monkeypatch):
    mem = _memory("dense", 6000, 9)
    g = _grid(mem, 9)
    tgt = _targets(mem, 9)
    want = _brute(mem, tgt)
    monkeypatch.setenv(_kernels.ENV, "1")
    assert _kernels.kernels() is None and _kernels.backend() == "numpy"
    got = planar_candidates(g, mem, tgt, P, True)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    monkeypatch.setenv(_kernels.ENV, "0")                 # "0" (or empty) leaves them on
    if _kernels.kernels() is not None:
        assert _kernels.backend().startswith("numba ")
    # numba absent: the first use finds no module and stays on numpy
    monkeypatch.delenv(_kernels.ENV)
    monkeypatch.setattr(_kernels, "_state", {"loaded": False, "k": None, "enabled": True, "error": None})
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.setitem(sys.modules, "camworld.retrieval._kernels_nb", None)
    assert _kernels.kernels() is None and _kernels.backend() == "numpy"
    got = planar_candidates(g, mem, tgt, P, False)
    np.testing.assert_array_equal(got[0], want[0])


def test_non_contiguous_poses_take_the_numpy_path(nb):
    mem = _memory("dense", 6000, 10)
    g = _grid(mem, 10)
    tgt = _targets(mem, 10)
    wide = np.c_[mem, np.zeros(len(mem))][:, :3]           # a strided view
    assert not wide.flags.c_contiguous
    np.testing.assert_array_equal(planar_candidates(g, wide, tgt, P, True)[0], _brute(mem, tgt)[0])


def test_compiled_cells_equal_numpy_cells(nb):
    """``_Cells.compiled`` (one compiled call) gives the numpy class's positions, row flags and box floats,
    also for frames exactly on cell borders, cells at the grid's clamped border and an empty range."""
    r = np.random.default_rng(11)
    c = 2.0
    xy = np.r_[r.uniform(-30, 30, (3000, 2)), np.round(r.uniform(-30, 30, (1000, 2)) / c) * c,
               [[(PoseGrid.OFFSET + 5) * c, 0.0], [-(PoseGrid.OFFSET + 5) * c, 3.0], [1.0, 1e9], [0.0, -1e9]]]
    g = PoseGrid(cell=c)
    g.add(xy, r.uniform(-np.pi, np.pi, len(xy)))
    for centres, reach in ((r.uniform(-25, 25, (4, 2)), 12.0), (np.array([[0.0, 0.0]]), 6.0),
                           (np.array([[c * 3, -c * 2]]), c), (np.array([[1e3, 1e3]]), 1.0),
                           (np.array([[(PoseGrid.OFFSET + 2) * c, 0.0], [0.0, 1e9]]), 4.0),
                           (np.array([[-(PoseGrid.OFFSET + 2) * c, 0.0]]), 30.0)):
        want = index._Cells(g, centres, reach)
        got = index._Cells.compiled(nb, g, centres, reach)
        for name in ("pos", "row_start", "x0", "x1", "y0", "y1", "border"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_compiled_rule_any_target_compaction(nb):
    """hits=False: the frames the first target accepts skip the others (compacted); the set, joined with
    the sure frames, is the brute force's for 1 to 6 targets, with targets that accept all, none or some."""
    r = np.random.default_rng(5)
    M = 6000
    mem = np.ascontiguousarray(np.c_[r.uniform(-12, 12, (M, 2)), r.uniform(-np.pi, np.pi, M)])
    half = float(np.deg2rad(P.hfov_deg) / 2.0)
    memo = index._EdgeMemo(half)
    memo.reserve(M)
    memo.fill(np.arange(M), mem[:, 2])
    args = (P.near, P.far, P.parallel_offset, np.sin(np.deg2rad(P.parallel_deg)), P.max_cam_dist ** 2,
            P.same_view_dist ** 2, np.deg2rad(P.same_view_deg))
    for T in (1, 2, 3, 6):
        tgt = np.c_[r.uniform(-10, 10, (T, 2)), r.uniform(-np.pi, np.pi, T)]
        if T == 6:
            tgt[1] = tgt[0]                      # a repeat: accepts exactly what the first one did
            tgt[2, :2] = 1e4                     # out of reach: accepts nothing
        tgt = np.ascontiguousarray(tgt)
        tl = np.array([[np.cos(float(w) + half), np.sin(float(w) + half)] for w in tgt[:, 2]])
        tr = np.array([[np.cos(float(w) - half), np.sin(float(w) - half)] for w in tgt[:, 2]])
        want, _ = _brute(mem, tgt)
        sure = want[::7]                         # some frames given as sure, the rest tested
        test = np.setdiff1d(np.arange(M), sure)[r.permutation(M - len(sure))]
        idx, cnt, stale = nb.rule(mem, memo.a, test, tgt, tl, tr, sure, np.ones(len(sure), np.int64), False, *args)
        assert len(stale) == 0
        np.testing.assert_array_equal(np.sort(idx), want)
        assert len(np.unique(idx)) == len(idx) and (cnt == 1).all()
