"""Indexed retrieval: read only the buckets of a ``PoseGrid`` that can hold what the exhaustive search finds.

A ``camworld.memory.PoseGrid`` (``MemoryBank.index``) files every frame under its ground cell and
heading bin. For one query, every occupied cell near the targets is classified, per heading bin, as

* **reject**: no pose in the cell's box with a heading in the bin can pass the rule (a necessary
  condition fails for every target), so its frames are never read;
* **sure** (planar FOV rule only): every such pose passes for a target (a sufficient condition holds
  with margin), so its frames are candidates without being tested;
* **test**: the rest; their frames go through the exact rule (``fov.overlap_matrix``).

When the cells near the targets hold at most ``FEW`` frames (a sparse memory), they are all tested
directly: cheaper than classifying, still without the exhaustive search's O(M) pass.

Both conditions are geometry on the cell's box (grown by ``EPS_POS`` for floating cell assignment)
and the bin's angle range, with margins (``EPS_ANG``, ``LINE_GAP``) far above float64 rounding, and
the exact rule gives every frame the answer it gives in the exhaustive search, so the result is
bit-identical to it (``tests/test_index.py`` compares them on random dense, sparse and adversarial
memories). Frames newer than the grid's sorted part (its tail, at most ``tail_max``) are tested
directly.

The planar rule's cases (``fov.py``), for a pose o, yaw psi and a target (o_t, psi_t):

* same view: |o - o_t| <= same_view_dist and |psi - psi_t| <= same_view_deg;
* parallel edge rays: |psi - psi_t| <= parallel_deg, o within ``parallel_offset`` of both target edge
  lines and at most ``far`` ahead along them, |o - o_t| <= max_cam_dist (linear tests over the box);
* crossing edge rays: the memory's left edge ray (heading psi + hfov/2) hits the target's left edge
  segment [near, far], and its right one the right segment. From the box centre the segment's ends
  lie at two headings; every point of the box sees each end within the angle that the box's
  circumscribed disc subtends there (``_blur``). So the heading hits the segment from *some* point
  of the box only inside the centre's arc widened by those angles (*maybe*), and from *every* point
  inside the arc narrowed by them (*sure*; the box must keep ``LINE_GAP`` off the segment's line, so
  that every point turns the same way from one end to the other). Sure crossings also need psi
  outside the parallel band, where the rule switches to the parallel case; at the band's two edges
  the two edge-ray pairs may round to different cases, and those headings are always tested.

For the 6-DoF frustum rule (``frustum.py``) and ``coverage`` only *reject* is used: a camera can see
a point only within its frustum's half-diagonal angle of its optical axis, which bounds its heading
(for cameras up to 30 degrees of pitch; steeper ones sit in the grid's steep bin, never rejected by
heading).

With numba installed (``camworld[fast]``) the planar query's classification, runs, exact rule and the
candidates' run splitting run compiled (``_kernels``), with the same answers; ``CAMWORLD_NO_NUMBA=1``
keeps the numpy code below.

Letters: C occupied cells in range, T targets, B heading bins (n_bins), R runs of equal state.
"""

from __future__ import annotations

import weakref

import numpy as np

from camworld.memory import PoseGrid
from camworld.retrieval import _kernels
from camworld.retrieval.fov import FovParams, _Edges, _rule

EPS_POS = 1e-6     # metres: cell boxes grown by this (floor(x / cell) can round across a border)
EPS_ANG = 1e-6     # radians: every angular test's margin
LINE_GAP = 1e-2    # metres: a box this close to a target edge's line is never 'sure' for its crossing
TWO_PI = 2.0 * np.pi
REJECT, TEST, SURE = 0, -1, 1   # bin states (SURE and up: how many targets a sure bin passes)
FEW = 4096         # at most this many frames in the cells near the targets: test them all (cheaper)


# ---------------------------------------------------------------------------------- arcs of headings
# An arc is (start, length) in radians; length < 0 is empty, >= 2 pi is the full circle.


def _arc_meet(s1, l1, s2, l2):
    """Intersection of arcs whose lengths are < pi (or full / empty): one arc, elementwise."""
    d = s2 - s1 - TWO_PI * np.floor((s2 - s1 + np.pi) * (1.0 / TWO_PI))   # s2 relative to s1, in [-pi, pi)
    lo, hi = np.maximum(0.0, d), np.minimum(l1, d + l2)
    s, l = s1 + lo, hi - lo
    full1, full2 = l1 >= TWO_PI, l2 >= TWO_PI
    s = np.where(full1, s2, np.where(full2, s1, s))
    l = np.where(full1, l2, np.where(full2, l1, l))
    return s, np.where((l1 < 0) | (l2 < 0), -1.0, l)


def _arc_to_disc(bx, by, half_diag, cx, cy, radius, extra):
    """Headings from a box (centre bx, by; half-diagonal) towards a disc, widened by ``extra`` radians."""
    dx, dy = cx - bx, cy - by
    dist = np.sqrt(dx * dx + dy * dy)
    near = dist <= half_diag + radius + EPS_POS
    half = np.arcsin(np.clip((half_diag + radius) / np.maximum(dist, 1e-300), 0.0, 1.0)) + extra + EPS_ANG
    return np.arctan2(dy, dx) - half, np.where(near | (half >= np.pi), 2 * TWO_PI, 2 * half)


# ---------------------------------------------------------------------------------- cells and bins


class _Cells:
    """The occupied cells of a grid within ``reach`` metres (box) of any of ``centres`` (T, 2)."""

    def __init__(self, grid: PoseGrid, centres: np.ndarray, reach: float):
        self.pos, self.row_start = grid.occupied(*self._span(grid, centres, reach))
        ids = grid.cells[self.pos]
        ix, iy = ids // (2 * grid.OFFSET), ids % (2 * grid.OFFSET)
        c = grid.cell
        self.x0 = (ix - grid.OFFSET) * c - EPS_POS                 # (C,) box, grown
        self.x1 = (ix - grid.OFFSET + 1) * c + EPS_POS
        self.y0 = (iy - grid.OFFSET) * c - EPS_POS
        self.y1 = (iy - grid.OFFSET + 1) * c + EPS_POS
        border = (ix == 0) | (ix == 2 * grid.OFFSET - 1) | (iy == 0) | (iy == 2 * grid.OFFSET - 1)
        for a, v in ((self.x0, -np.inf), (self.x1, np.inf), (self.y0, -np.inf), (self.y1, np.inf)):
            a[border] = v                                          # border cells hold everything beyond
        self.border = border

    @staticmethod
    def _span(grid: PoseGrid, centres: np.ndarray, reach: float):
        """(ix0, ix1, iy0, iy1): the cell range (offset coordinates) of the targets' box grown by reach."""
        lo, hi = centres.min(0) - reach - EPS_POS, centres.max(0) + reach + EPS_POS
        ix0, iy0 = (int(v) for v in grid.cell_index(lo))
        ix1, iy1 = (int(v) for v in grid.cell_index(hi))
        return ix0, ix1, iy0, iy1

    @classmethod
    def compiled(cls, k, grid: PoseGrid, centres: np.ndarray, reach: float) -> "_Cells":
        """The same cells by one compiled call (``_kernels``): the same positions, flags and box floats."""
        self = cls.__new__(cls)
        (self.pos, self.row_start, self.x0, self.x1, self.y0, self.y1,
         self.border) = k.cells(grid.cells, *cls._span(grid, centres, reach), grid.OFFSET, grid.cell)
        return self

    def __len__(self):
        return len(self.pos)

    def centre(self):
        """(C,) box centres x, y and half-diagonals."""
        wx, wy = self.x1 - self.x0, self.y1 - self.y0
        return 0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1), 0.5 * np.sqrt(wx * wx + wy * wy)

    def dist_range(self, px, py):
        """(min, max) distance from each box (C, 1) to points (1, T) -> (C, T) each."""
        x0, x1, y0, y1 = self.x0[:, None], self.x1[:, None], self.y0[:, None], self.y1[:, None]
        ex, ey = np.maximum(np.maximum(x0 - px, px - x1), 0.0), np.maximum(np.maximum(y0 - py, py - y1), 0.0)
        fx, fy = np.maximum(np.abs(x0 - px), np.abs(x1 - px)), np.maximum(np.abs(y0 - py), np.abs(y1 - py))
        return np.sqrt(ex * ex + ey * ey), np.sqrt(fx * fx + fy * fy)


def _bins(grid: PoseGrid, s, l, sure: bool):
    """Heading bins an arc touches (sure=False) or holds whole (sure=True): (first bin unwrapped, count)."""
    w = TWO_PI / grid.n_bins
    if sure:
        lo = np.ceil((s + EPS_ANG) / w)
        n = np.floor((s + l - EPS_ANG) / w) - lo                  # bins [lo, lo + n) lie inside
    else:
        lo = np.floor((s - EPS_ANG) / w)
        n = np.floor((s + l + EPS_ANG) / w) - lo + 1
    full = l >= TWO_PI
    n = np.where(full, grid.n_bins, np.clip(n, 0, grid.n_bins))
    return np.where(full, 0, lo).astype(np.int64), n.astype(np.int64)


_SURE_WEIGHT = float(1 << 20)     # sure ranges count in the high part of one cumulative sum


def _cover(grid: PoseGrid, rows: int, maybe: list, sure: list):
    """Which bins of each row the maybe / sure arcs cover -> (maybe bool (rows, B), sure bool (rows, B)).

    ``maybe``, ``sure``: lists of (row, s, l) arrays, one arc (s, l) per entry. One difference array
    over the bins (wrapping around), one cumulative sum.
    """
    B = grid.n_bins
    idx, val = [], []
    for arcs, is_sure in ((maybe, False), (sure, True)):
        if not arcs:
            continue
        r, s, ln = (np.concatenate([a[j] if np.shape(a[j]) == np.shape(a[2]) else np.broadcast_to(a[j], np.shape(a[2]))
                                    for a in arcs], axis=None) for j in range(3))
        keep = ln >= 0
        keep = np.flatnonzero(keep)                              # (take: boolean indexing is ~3x slower here)
        lo, n = _bins(grid, s.take(keep), ln.take(keep), is_sure)
        r, w = r.take(keep), _SURE_WEIGHT if is_sure else 1.0
        keep = n > 0
        keep = np.flatnonzero(keep)
        r, lo, n = r.take(keep), lo.take(keep) % B, n.take(keep)
        end = lo + n
        wrap = end > B
        base = r * (B + 1)
        idx += [base + lo, base + np.where(wrap, B, end), base[wrap], base[wrap] + end[wrap] - B]
        val += [np.full(len(lo), w), np.full(len(lo), -w), np.full(int(wrap.sum()), w), np.full(int(wrap.sum()), -w)]
    diff = np.bincount(np.concatenate(idx), np.concatenate(val), minlength=rows * (B + 1)).reshape(rows, B + 1)
    cum = np.cumsum(diff, 1)[:, :B]
    su = cum > _SURE_WEIGHT - 0.5
    return (cum - su * _SURE_WEIGHT) > 0.5, su


def _runs(grid: PoseGrid, cells: _Cells, state: np.ndarray):
    """Runs of equal non-reject state over (C, B + 1) bins -> (state of each run, where its frames start in
    ``grid.order``, how many). A run never joins two ix rows; within a row, the cells between two occupied
    ones hold no frames, so a run's key range [first key, last key] holds exactly its buckets' frames."""
    C, W = state.shape
    flat = state.ravel()
    brk = np.empty(C * W, bool)
    brk[0] = True
    np.not_equal(flat[1:], flat[:-1], out=brk[1:])
    brk[np.flatnonzero(cells.row_start) * W] = True                # runs never join two ix rows
    start = np.flatnonzero(brk)
    end = np.append(start[1:], C * W) - 1
    st = flat.take(start)
    keep = np.flatnonzero(st != REJECT)
    start, end, st = start.take(keep), end.take(keep), st.take(keep)
    ids = grid.cells.take(cells.pos)
    k = np.empty(2 * len(start), np.int64)               # each run's first key and last key + 1: nondecreasing,
    k[0::2] = ids.take(start // W) * grid.bins_per_cell + start % W          # so one search finds both ends
    k[1::2] = ids.take(end // W) * grid.bins_per_cell + end % W + 1
    at = np.searchsorted(grid.keys, k, side="left")
    return st, at[0::2], at[1::2] - at[0::2]


def _gather(grid: PoseGrid, cells: _Cells, state: np.ndarray):
    """Frames of the runs of equal non-reject state over (C, B + 1) bins -> (frames, state of each frame)."""
    st, lo, count = _runs(grid, cells, state)
    return grid.order.take(_ranges(lo, count)), np.repeat(st, count)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``memory.ranges`` (arange(s, s + c) for every (s, c), concatenated; counts may be 0), by one repeat
    and one arange: ~3.5x faster for the ~500 runs of a dense query (no int64 cumsum over every frame)."""
    counts = np.asarray(counts, np.int64)
    end = np.cumsum(counts)                                    # where each range ends in the output
    return np.repeat(np.asarray(starts, np.int64) - (end - counts), counts) + np.arange(int(end[-1]) if len(end) else 0)


def _sort_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """Frame indices (< n) in increasing order, int64: sorted as int32 where they fit (the same order; numpy
    sorts 10,000 int32 ~5x faster than int64 here)."""
    if n <= np.iinfo(np.int32).max:
        return np.sort(frames.astype(np.int32)).astype(np.int64)
    return np.sort(frames)


def _check(grid: PoseGrid, M: int):
    if not isinstance(grid, PoseGrid):
        raise ValueError(f"index must be a camworld.memory.PoseGrid (MemoryBank.index), got {type(grid).__name__}")
    if grid.n != M:
        raise ValueError(f"index covers {grid.n} frames but the memory has {M}: pass the index of the same "
                         "MemoryBank (bank.index), read after the bank's last append")


def _tail(grid: PoseGrid, pos: np.ndarray, centres: np.ndarray, reach: float) -> np.ndarray:
    """Frames of the grid's unsorted tail within ``reach`` of any centre (exact distance)."""
    t = np.arange(grid.n_sorted, grid.n)
    if len(t) == 0:
        return t
    d2 = ((pos[t, None, :2] - centres[None, :, :2]) ** 2).sum(-1)
    return t[(d2 <= reach * reach).any(1)]


# ---------------------------------------------------------------------------------- the planar FOV rule


class _EdgeMemo:
    """Per frame of one grid's memory: the yaw a query last saw and cos / sin of its two FOV edge
    headings (yaw +- hfov / 2), filled by the queries that test the frame (trig is most of the exact
    rule's cost, and the frames near a moving camera are tested again and again; the memory only
    appends). A frame's entry is used only while its yaw is the same float as the pose passed now
    (checked per query, per frame), and the edges are a function of the yaw alone, so the memo never
    changes an answer. Rows (frame) of (yaw, lx, ly, rx, ry); an unfilled row is all zeros, and no
    filled one has lx == 0 (no float64's cosine is exactly 0). 40 bytes per frame, allocated lazily."""

    def __init__(self, half: float):
        self.half = half
        self.a = np.zeros((0, 5))

    def reserve(self, n: int):
        """Rows for frames < n (grown by doubling: amortised O(1) per frame)."""
        if len(self.a) < n:
            a = np.zeros((max(n, 2 * len(self.a)), 5))
            a[:len(self.a)] = self.a
            self.a = a

    def fill(self, rows: np.ndarray, yaw: np.ndarray):
        """Compute and keep the edges of frames ``rows`` (unique) at yaws ``yaw``: (S, 5) rows as stored."""
        left, right = yaw + self.half, yaw - self.half
        fresh = np.stack([yaw, np.cos(left), np.sin(left), np.cos(right), np.sin(right)], 1)
        self.a[rows] = fresh
        return fresh

    def edges(self, poses: np.ndarray, idx: np.ndarray, n: int) -> _Edges:
        """The rule's edges of frames idx (< n) of ``poses``, from the memo where it holds them."""
        self.reserve(n)
        pt = poses.take(idx, 0).T.copy()                       # (3, S): x, y, yaw rows
        yaw = pt[2]
        c = self.a.take(idx, 0)                                # (S, 5)
        stale = np.flatnonzero((c[:, 0] != yaw) | (c[:, 1] == 0.0))
        if len(stale):
            c[stale] = self.fill(idx[stale], yaw[stale])
        ct = c[:, 1:].T.copy()                                 # (4, S): lx, ly, rx, ry rows
        return _Edges.of(pt[0], pt[1], yaw, ct[0], ct[1], ct[2], ct[3], self.half)


_MEMOS: "weakref.WeakKeyDictionary[PoseGrid, dict]" = weakref.WeakKeyDictionary()


def _edges(grid: PoseGrid, poses: np.ndarray, idx: np.ndarray, p: FovParams) -> _Edges:
    half = float(np.deg2rad(p.hfov_deg) / 2.0)
    memos = _MEMOS.setdefault(grid, {})
    if half not in memos:
        memos[half] = _EdgeMemo(half)
    return memos[half].edges(poses, idx, grid.n)


def _wrap(a):
    """Angles to [-pi, pi) without np.remainder (several times slower on float64)."""
    return a - TWO_PI * np.floor((a + np.pi) * (1.0 / TWO_PI))


def _contains(s, l, a):
    """Does arc (s, l) hold angle a (margin EPS_ANG)?"""
    return (l >= TWO_PI) | ((l >= 0) & ((a - s + EPS_ANG) - TWO_PI * np.floor((a - s + EPS_ANG) / TWO_PI) <= l + 2 * EPS_ANG))


def _blur(r, d):
    """An upper bound of the angle a disc of radius r subtends at distance d: asin(r / d) <= x / sqrt(1 - x^2)."""
    x = np.minimum(r / np.maximum(d, 1e-300), 1.0)
    return np.where(x < 0.999, x / np.sqrt(np.maximum(1.0 - x * x, 1e-12)), 2 * TWO_PI)


def _strips(gx, gy, hx, hy, ux, uy, p: FovParams):
    """The parallel case's tests of boxes (centres g relative to a target, half sizes h) against one
    target edge line (direction u): (maybe, sure, signed distance of the centre, its range over the box)."""
    lat = gx * uy - gy * ux
    lat_r = np.abs(uy) * hx + np.abs(ux) * hy
    ahead = gx * ux + gy * uy
    ahead_r = np.abs(ux) * hx + np.abs(uy) * hy
    maybe = (np.maximum(np.abs(lat) - lat_r, 0.0) <= p.parallel_offset + EPS_POS) & (ahead - ahead_r <= p.far + EPS_POS)
    sure = (np.abs(lat) + lat_r <= p.parallel_offset - EPS_POS) & (ahead + ahead_r <= p.far - EPS_POS)
    return maybe, sure, lat, lat_r, ahead


def _segment(nx, ny, fx, fy, rn, rf, close, clear):
    """Headings that hit a segment from a box: its near and far ends lie within rn / rf of the vectors
    n, f from the box centre (rn, rf include the box's half-diagonal). Returns the maybe arc (from some
    point of the box; the full circle where ``close``) and the sure arc (from every point; only where
    ``clear``: the box off the segment's line, so every point turns the same way from end to end)."""
    ta, tb = np.arctan2(ny, nx), np.arctan2(fy, fx)
    ea = _blur(rn, np.sqrt(nx * nx + ny * ny)) + EPS_ANG
    eb = _blur(rf, np.sqrt(fx * fx + fy * fy)) + EPS_ANG
    rel = _wrap(tb - ta)                                     # the shorter turn from the near end to the far end
    fwd = rel >= 0
    lo, hi = np.where(fwd, -ea, rel - eb), np.where(fwd, rel + eb, ea)
    maybe = (ta + lo, np.where(close | (hi - lo >= np.pi - 0.01), 2 * TWO_PI, hi - lo))
    s_len = np.where(fwd, rel, -rel) - ea - eb
    sure = (ta + np.where(fwd, ea, rel + eb), np.where(clear & (s_len > 0) & (ea < np.pi) & (eb < np.pi), s_len, -1.0))
    return maybe, sure


class _Box:
    """Boxes (cells) relative to targets: centres g, half sizes h, half-diagonal hd, distance range."""

    def __init__(self, cells: _Cells, ci, xt, yt):
        bx, by, hd = cells.centre()
        self.hx, self.hy = 0.5 * (cells.x1 - cells.x0)[ci], 0.5 * (cells.y1 - cells.y0)[ci]
        self.hd = hd[ci]
        self.gx, self.gy = bx[ci] - xt, by[ci] - yt
        ax, ay = np.abs(self.gx), np.abs(self.gy)
        self.dmin = np.sqrt(np.maximum(ax - self.hx, 0.0) ** 2 + np.maximum(ay - self.hy, 0.0) ** 2)
        self.dmax = np.sqrt((ax + self.hx) ** 2 + (ay + self.hy) ** 2)


def _target_arcs(cells: _Cells, ci, tgt_rows: np.ndarray, p: FovParams, edge_dirs):
    """Maybe and sure arcs of the rule's cases for boxes ci against one target each (tgt_rows (P, 3));
    ``edge_dirs``: (ux, uy) (2P,), the unit directions of those targets' left edges, then their right ones."""
    half = np.deg2rad(p.hfov_deg) / 2.0
    sv, par = np.deg2rad(p.same_view_deg), np.deg2rad(p.parallel_deg)
    b = _Box(cells, ci, tgt_rows[:, 0], tgt_rows[:, 1])
    wt = tgt_rows[:, 2]
    ux, uy = edge_dirs
    ok, ok_sure = b.dmin <= p.max_cam_dist + EPS_POS, b.dmax <= p.max_cam_dist - EPS_POS
    # both target edges (left: + half, right: - half) in one pass over (2P,) arrays: half the numpy calls
    P = len(ci)
    sh = np.repeat([half, -half], P)
    gx, gy, hx, hy, hd = (np.concatenate([v, v]) for v in (b.gx, b.gy, b.hx, b.hy, b.hd))
    s_maybe, s_sure, lat, lat_r, ahead = _strips(gx, gy, hx, hy, ux, uy, p)
    seg_d = np.sqrt(lat * lat + (ahead - np.clip(ahead, p.near, p.far)) ** 2)
    r = hd + EPS_POS
    m, su = _segment(p.near * ux - gx, p.near * uy - gy, p.far * ux - gx, p.far * uy - gy, r, r,
                     seg_d <= hd + 2 * EPS_POS, np.abs(lat) - lat_r > LINE_GAP)
    m0, su0 = m[0] - sh, su[0] - sh
    lm, rm, ls, rs = s_maybe[:P], s_maybe[P:], s_sure[:P], s_sure[P:]
    lmaybe, rmaybe = (m0[:P], m[1][:P]), (m0[P:], m[1][P:])
    lsure, rsure = (su0[:P], su[1][:P]), (su0[P:], su[1][P:])
    no = -np.ones(len(ci))
    sure = [(wt - sv + EPS_ANG, np.where(b.dmax <= p.same_view_dist - EPS_POS, 2 * sv - 2 * EPS_ANG, no)),
            (wt - par + EPS_ANG, np.where(ok_sure & ls & rs, 2 * par - 2 * EPS_ANG, no))]
    s, l = _arc_meet(*lsure, *rsure)
    s, l = s + EPS_ANG, np.where(ok_sure, l - 2 * EPS_ANG, no)
    for band in (wt + par + EPS_ANG, wt - np.pi + par + EPS_ANG):        # crossing: outside the parallel band
        sure.append(_arc_meet(s, l, band, np.pi - 2 * par - 2 * EPS_ANG + 0 * s))
    s, l = _arc_meet(*lmaybe, *rmaybe)
    maybe = [(wt - sv - EPS_ANG, np.where(b.dmin <= p.same_view_dist + EPS_POS, 2 * sv + 2 * EPS_ANG, no)),
             (wt - par - EPS_ANG, np.where(ok & lm & rm, 2 * par + 2 * EPS_ANG, no)),
             (s, np.where(ok, l, no))]
    # at the band's edges the two pairs may round to different cases (one parallel, one crossing)
    for e in (wt + par, wt - par):
        both = (lm | _contains(*lmaybe, e)) & (rm | _contains(*rmaybe, e)) & ok
        maybe.append((e - EPS_ANG, np.where(both, 2 * EPS_ANG, no)))
    return maybe, sure


def _planar_states(grid: PoseGrid, cells: _Cells, tgt: np.ndarray, p: FovParams, hits: bool) -> np.ndarray:
    """Per (cell, bin) state: REJECT, TEST, or for sure bins SURE (any target; hits=False) or how many
    targets they surely pass (hits=True, decided for every target)."""
    C, T, B = len(cells), len(tgt), grid.n_bins
    reach = max(p.max_cam_dist, p.same_view_dist) + EPS_POS
    bx, by, _ = cells.centre()
    hx, hy = 0.5 * (cells.x1 - cells.x0), 0.5 * (cells.y1 - cells.y0)
    ex = np.maximum(np.abs(bx[:, None] - tgt[None, :, 0]) - hx[:, None], 0.0)
    ey = np.maximum(np.abs(by[:, None] - tgt[None, :, 1]) - hy[:, None], 0.0)
    ci, ti = np.nonzero(ex * ex + ey * ey <= reach * reach)                           # (P,) pairs in reach
    rows, nrows = (ci * T + ti, C * T) if hits else (ci, C)
    half = np.deg2rad(p.hfov_deg) / 2.0                  # cos / sin of each target's two edges, once per target
    ang = np.concatenate([tgt[:, 2] + half, tgt[:, 2] - half])
    pick = np.concatenate([ti, ti + T])
    maybe, sure = _target_arcs(cells, ci, tgt[ti], p, (np.cos(ang).take(pick), np.sin(ang).take(pick)))
    m, su = _cover(grid, nrows, [(rows, s, l) for s, l in maybe], [(rows, s, l) for s, l in sure])
    if hits:
        state = np.zeros((C, B + 1), np.int64)
        m, su = m.reshape(C, T, B), su.reshape(C, T, B)
        state[:, :B] = np.where((m & ~su).any(1), TEST, su.sum(1))
        any_maybe = m.any((1, 2))
    else:
        state = np.zeros((C, B + 1), np.int8)                     # SURE 1, TEST -1, REJECT 0
        np.subtract(su.view(np.int8), (m & ~su).view(np.int8), out=state[:, :B])
        any_maybe = m.any(1)
    if grid.n_steep > 0:
        state[:, B] = np.where(any_maybe, TEST, REJECT)                   # steep frames: any planar yaw
    state[cells.border] = TEST                                             # unbounded boxes: test them all
    return state


def planar_candidates(grid: PoseGrid, poses: np.ndarray, tgt: np.ndarray, p: FovParams, hits: bool = True):
    """``fov.fov_candidates`` through the index: the same (idx, hits or None), reading few frames."""
    _check(grid, len(poses))
    reach = max(p.max_cam_dist, p.same_view_dist)
    k = _kernels.kernels()
    if k is not None and poses.dtype == np.float64 and poses.flags.c_contiguous:   # compiled (numba): the
        # same answers, ~2x faster (``_kernels``; one compiled version: C-ordered float64 poses, as a bank keeps)
        return _planar_compiled(k, grid, _Cells.compiled(k, grid, tgt[:, :2], reach), poses, tgt, p, hits, reach)
    cells = _Cells(grid, tgt[:, :2], reach)
    start = grid.cell_start[cells.pos]
    count = grid.cell_start[cells.pos + 1] - start
    if count.sum() <= FEW:                   # few frames near the targets: test them all, no classification
        test, sure, sure_n = grid.order.take(_ranges(start, count)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        with np.errstate(invalid="ignore", over="ignore"):      # border cells (inf boxes) are tested whole
            state = _planar_states(grid, cells, tgt, p, hits)
        st, lo, n = _runs(grid, cells, state)                    # the test and the sure runs, read apart
        t, s = st == TEST, st >= SURE
        test, sure = grid.order.take(_ranges(lo[t], n[t])), grid.order.take(_ranges(lo[s], n[s]))
        sure_n = np.repeat(st[s], n[s]) if hits else None
    tail = _tail(grid, poses, tgt, reach)
    if len(tail):
        test = np.concatenate([test, tail])
    if hits:
        count = _rule(_edges(grid, poses, test, p), tgt, p, False).sum(1) if len(test) else np.zeros(0, np.int64)
        met = np.flatnonzero(count)
        idx, n = np.concatenate([sure, test.take(met)]), np.concatenate([sure_n, count.take(met)])
        order = np.argsort(idx)              # frames are unique: the one sorting permutation, as a stable sort gives
        return idx[order], n[order].astype(np.int64)
    passed = np.compress(_rule(_edges(grid, poses, test, p), tgt, p, True), test) if len(test) else test
    return _sort_frames(np.concatenate([sure, passed]), grid.n), None


def _planar_compiled(k, grid: PoseGrid, cells: _Cells, poses: np.ndarray, tgt: np.ndarray, p: FovParams, hits: bool,
                     reach: float):
    """``planar_candidates`` by the compiled kernels (``_kernels``): the same classification, runs, memo
    and exact rule, each in one call; the trig of the memo and of the targets' edges stays in numpy."""
    tgt = np.ascontiguousarray(tgt, np.float64)
    start = grid.cell_start[cells.pos]
    count = grid.cell_start[cells.pos + 1] - start
    half = np.deg2rad(p.hfov_deg) / 2.0
    empty = np.zeros(0, np.int64)
    if count.sum() <= FEW:
        test, sure, sure_n = grid.order.take(_ranges(start, count)), empty, empty
    else:
        ang = np.concatenate([tgt[:, 2] + half, tgt[:, 2] - half])
        with np.errstate(invalid="ignore", over="ignore"):
            state = k.planar_states(cells.x0, cells.x1, cells.y0, cells.y1, cells.border, tgt, np.cos(ang),
                                    np.sin(ang), hits, grid.n_steep > 0, grid.n_bins, half,
                                    np.deg2rad(p.same_view_deg), np.deg2rad(p.parallel_deg), p.near, p.far,
                                    p.max_cam_dist, p.parallel_offset, p.same_view_dist, reach + EPS_POS)
        test, sure, sure_n = k.gather(state, cells.row_start, grid.cells.take(cells.pos), cells.pos,
                                      grid.cell_start, grid.bins_per_cell, grid.keys, grid.order)
    tail = _tail(grid, poses, tgt, reach)
    if len(tail):
        test = np.concatenate([test, tail])
    h = float(half)
    memos = _MEMOS.setdefault(grid, {})
    if h not in memos:
        memos[h] = _EdgeMemo(h)
    memo = memos[h]
    memo.reserve(grid.n)
    tl, tr = np.empty((len(tgt), 2)), np.empty((len(tgt), 2))
    for j, t in enumerate(tgt):                  # exactly as fov._rule computes them
        wt = float(t[2])
        tl[j] = np.cos(wt + h), np.sin(wt + h)
        tr[j] = np.cos(wt - h), np.sin(wt - h)
    args = (hits, p.near, p.far, p.parallel_offset, np.sin(np.deg2rad(p.parallel_deg)), p.max_cam_dist ** 2,
            p.same_view_dist ** 2, np.deg2rad(p.same_view_deg))
    idx, n, stale = k.rule(poses, memo.a, test, tgt, tl, tr, sure, sure_n, *args)
    if len(stale):       # frames the memo lacks: their edges by numpy (the exhaustive search's floats), again
        rows = test.take(stale)
        memo.fill(rows, poses.take(rows, 0)[:, 2])
        idx, n, _ = k.rule(poses, memo.a, rows, tgt, tl, tr, idx, n, *args)
    if not hits:
        return _sort_frames(idx, grid.n), None
    order = np.argsort(idx)                  # frames are unique: the one sorting permutation
    return idx[order], n[order]


# ---------------------------------------------------------------------------------- cones (6-DoF, coverage)


def _cone_states(grid: PoseGrid, cells: _Cells, cx, cy, radius, max_dist, xt, yt, half_angle, level_slack):
    """TEST for the bins whose cameras may look at a disc (centres (T,), radius (T,)) within their cone.

    A camera at o in the box, at most ``max_dist`` (xy) from (xt, yt), can see a point of the disc only
    if its heading is within ``half_angle`` (+ ``level_slack`` for pitched cameras) of a direction from
    the box to the disc. Steep cameras: by distance alone.
    """
    C, B = len(cells), grid.n_bins
    bx, by, hd = (v[:, None] for v in cells.centre())
    dmin, _ = cells.dist_range(xt[None], yt[None])
    ok = dmin <= max_dist + EPS_POS                                                     # (C, T)
    s, l = _arc_to_disc(bx, by, hd, cx[None], cy[None], radius[None], half_angle + level_slack)
    rows = (np.arange(C)[:, None] + 0 * ok).ravel()
    cover, _ = _cover(grid, C, [(rows, s.ravel(), np.where(ok, l, -1.0).ravel())], [])
    state = np.zeros((C, B + 1), np.int64)
    state[:, :B] = np.where(cover, TEST, REJECT)
    state[:, B] = np.where(ok.any(1) & (grid.n_steep > 0), TEST, REJECT)
    state[cells.border] = TEST
    return state


def cone_superset(grid: PoseGrid, pos: np.ndarray, centres: np.ndarray, radius: np.ndarray, max_dist: float,
                  anchors: np.ndarray, half_angle: float, pitched: bool) -> np.ndarray:
    """Frames (increasing) within ``max_dist`` (xy) of any anchor (T, 2) that may look at any disc
    (centres (T, 2), radius (T,)) within ``half_angle`` of their heading; ``pitched``: cameras may
    pitch up to the grid's steep limit (widens the heading test). A superset: callers test exactly.
    ``pos``: (M, >= 2) memory positions, for the tail."""
    _check(grid, len(pos))
    slack = 0.0
    if pitched:
        cos_phi = np.sqrt(1.0 - PoseGrid.STEEP_SIN ** 2)
        slack = float(np.arcsin(min(1.0, np.sin(half_angle) / cos_phi))) - half_angle if half_angle < np.pi / 2 \
            else np.pi
    cells = _Cells(grid, np.concatenate([anchors, centres]), max_dist + float(np.max(radius, initial=0.0)))
    start = grid.cell_start[cells.pos]
    count = grid.cell_start[cells.pos + 1] - start
    frames = np.zeros(0, np.int64)
    if count.sum() <= FEW:                   # few frames around: all of them, no classification
        frames = grid.order.take(_ranges(start, count))
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            st = _cone_states(grid, cells, centres[:, 0], centres[:, 1], radius, max_dist, anchors[:, 0],
                              anchors[:, 1], half_angle, slack)
        frames, _ = _gather(grid, cells, st)
    return np.concatenate([_sort_frames(frames, grid.n), _tail(grid, pos, anchors, max_dist)])
