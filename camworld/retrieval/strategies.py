"""Context-selection strategies (paper §3.3, Tables 1 and 3), registered in ``registry.py`` (the front
door, ``retrieve``).

Every strategy is a function

    fn(mem_poses (M, 3), mem_times (M,), target_poses (T, 3), k, rng, **params) -> int64 (<= k,)

returning unique memory indices, sorted by time (oldest first), that ALWAYS include the newest
frame (argmax of ``mem_times``; the first such index on ties), as the paper does at inference
(§3.3: "add the most recently generated frame to the context"). The other k - 1 slots are the
strategy's choice. Empty memory gives an empty result. Times are any increasing clock (step
counter or seconds); only their order and, for run splitting, their gaps matter.

Paper strategies (Table 3), all built on the FOV candidate set (``fov.py``: frames overlapping any
target pose):

* ``fov``: the candidates overlapping the most target poses, newest first on ties (deterministic).
* ``fov+random``: k - 1 candidates uniformly at random.
* ``fov+nonadj``: candidates split into runs of consecutive frames (consecutive indices, time
  gap <= ``max_run_dt`` and step <= ``max_run_step`` metres); one random frame per run, with the
  newest frame standing for its own run; k - 1 runs at random when there are more.
* ``fov+nonadj+far``: as ``fov+nonadj``, plus ``far_frac`` of the slots go to frames far apart in
  space or time (farthest-point sampling on max(space / space span, time / time span)).

Filling (the paper leaves it open). ``fov+nonadj`` keeps one frame per run, so it often holds
fewer frames than k - 1 slots (the recent trajectory is ONE long run). The default
``fill="candidates"`` then tops up from the other FOV candidates, each time taking the one farthest
in time from everything already chosen (so the extra frames stay non-adjacent: long runs are
split evenly). Frames outside the FOV candidate set are never added by default: the paper's own
argument (§1) is that irrelevant frames add noise, and the world model handles a short context
with its padding mask. ``fill="none"`` returns only the rule's picks (the literal Table 3 variant),
``fill="recent"`` tops up with the newest frames, ``fill="random"`` with random frames. For
``fov`` and ``fov+random`` every candidate is already eligible, so "candidates" equals "none".

Baselines (Table 1 and §3.3 alternatives): ``random``, ``first`` (the oldest frame), ``first+random``,
``recent`` (DFoT: the newest k frames), ``framepack`` (see :func:`framepack`), and our
``coverage`` (``coverage.py``).

6-DoF. Given extrinsics (``registry.py``), the FOV strategies use the frustum rule (``frustum.py``) for
the candidate set and 3D camera positions for runs and far frames; the selection code is the same.

Letters: M memory frames, T target frames, C candidates, R runs.
"""

from __future__ import annotations

import numpy as np

from camworld.retrieval import _kernels
from camworld.retrieval.fov import FovParams, fov_candidates
from camworld.retrieval.frustum import FrustumParams, frustum_candidates
from camworld.retrieval.registry import STRATEGIES, _Query, _validate, retrieve, strategy  # noqa: F401  (re-exported)

FILL_CHOICES = ("candidates", "none", "recent", "random")


# ---------------------------------------------------------------------------------- helpers


def _others(q: _Query, idx: np.ndarray) -> np.ndarray:
    return idx[idx != q.newest]


def _choose(rng, idx: np.ndarray, n: int) -> np.ndarray:
    """n distinct elements of idx at random (all of them if n >= len(idx))."""
    if n >= len(idx):
        return idx
    return idx[rng.choice(len(idx), size=n, replace=False)]


def _random_others(q: _Query, n: int, exclude=None) -> np.ndarray:
    """n random memory indices other than the newest (and ``exclude``), without an O(M) permutation."""
    banned = np.unique(np.concatenate([[q.newest], [] if exclude is None else exclude]).astype(np.int64))
    n = min(n, q.M - len(banned))
    if n <= 0:
        return np.zeros(0, np.int64)
    # draw from [0, M - len(banned)) and shift past the banned indices (order-preserving bijection)
    r = np.sort(q.rng.choice(q.M - len(banned), size=n, replace=False))
    return r + np.searchsorted(banned - np.arange(len(banned)), r, side="right")


def _newest_order(q: _Query, n: int, exclude=None) -> np.ndarray:
    """Indices of the n newest frames other than the newest itself (and ``exclude``), newest first."""
    ban = {q.newest} if exclude is None else {q.newest, *map(int, exclude)}
    m = min(q.M, n + len(ban))
    t = q.times
    if m >= q.M:
        order = np.lexsort((-np.arange(q.M), -t))
    elif q.M > 2 * m and t[:-m].max() <= t[-m:].min():  # append-ordered memory: the tail holds them
        tail = np.arange(q.M - m, q.M)
        order = tail[np.lexsort((-tail, -t[tail]))]
    else:
        part = np.argpartition(-t, m - 1)[:m]
        order = part[np.lexsort((-part, -t[part]))]
    order = np.asarray([i for i in order if int(i) not in ban], np.int64)
    return order[:n]


def _fill(q: _Query, picked: np.ndarray, fill: str, cand: np.ndarray | None = None) -> np.ndarray:
    """Top ``picked`` up to k - 1 frames by the ``fill`` policy (module doc); cand = FOV candidates."""
    if fill not in FILL_CHOICES:
        raise ValueError(f"fill must be one of {FILL_CHOICES}, got {fill!r}")
    picked = np.asarray(picked, np.int64)
    need = q.k - 1 - len(_others(q, np.unique(picked)))
    if need <= 0 or fill == "none":
        return picked
    if fill == "candidates":
        if cand is None or len(cand) == 0:
            return picked
        pool = np.setdiff1d(_others(q, cand), picked)
        return np.concatenate([picked, _spread_in_time(q, pool, np.union1d(picked, [q.newest]), need)])
    if fill == "recent":
        return np.concatenate([picked, _newest_order(q, need, exclude=picked)])
    return np.concatenate([picked, _random_others(q, need, exclude=picked)])


def _spread_in_time(q: _Query, pool: np.ndarray, chosen: np.ndarray, n: int) -> np.ndarray:
    """n frames of pool, each the farthest in time from everything chosen so far (greedy)."""
    if n <= 0 or len(pool) == 0:
        return np.zeros(0, np.int64)
    if n >= len(pool):
        return pool
    t, ct = q.times[pool], np.sort(q.times[chosen])
    pos = np.searchsorted(ct, t)           # nearest chosen time on each side, O(P log C)
    lo = np.abs(t - ct[np.clip(pos - 1, 0, len(ct) - 1)])
    hi = np.abs(ct[np.clip(pos, 0, len(ct) - 1)] - t)
    dmin = np.minimum(lo, hi)
    out = []
    for _ in range(n):
        j = int(np.argmax(dmin))
        out.append(pool[j])
        dmin = np.minimum(dmin, np.abs(t - t[j]))
        dmin[j] = -1.0
    return np.asarray(out, np.int64)


def _candidates(q: _Query, params: dict, hits: bool = False):
    """The candidate set (idx, hits or None) by the query's rule: planar FOV or 6-DoF frustum."""
    P, rule = (FrustumParams, "the 6-DoF frustum rule") if q.sixdof else (FovParams, "the planar FOV rule")
    try:
        p = P(**params).check()
    except TypeError:
        bad = sorted(set(params) - set(P.__dataclass_fields__))
        raise ValueError(f"unknown parameters {bad} for {rule}; it takes {sorted(P.__dataclass_fields__)}") from None
    if q.sixdof:
        return frustum_candidates(q.ext, q.targets, p, q.index, hits)
    return fov_candidates(q.poses, q.targets, p, q.index, hits)


def runs(idx, times: np.ndarray, poses: np.ndarray, max_run_dt: float = 1.0, max_run_step: float = 1.0,
         positions: np.ndarray | None = None):
    """Split increasing candidate indices (C,) into runs of consecutive frames (§3.3 (1), "Non-adj").

    Two neighbouring candidates i < j share a run when j == i + 1, |t_j - t_i| <= max_run_dt and
    their positions are at most max_run_step metres apart (so interleaved agents in a shared memory,
    or the two sides of a cut-out training segment, are different runs). Positions are the planar
    poses' (x, y), or ``positions`` (M, D) when given (3D camera centres). Returns run ids int64 (C,).
    """
    idx = np.asarray(idx, np.int64)
    if len(idx) == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([[0], np.cumsum(~_same_run(idx, times, poses, max_run_dt, max_run_step, positions))])


def _same_run(idx, times, poses, max_run_dt, max_run_step, positions=None) -> np.ndarray:
    """bool (C - 1,): does candidate j + 1 continue candidate j's run? (``runs``; idx int64, non-empty)"""
    k = _kernels.kernels()
    if k is not None and times.dtype == np.float64:        # compiled: the same floats, one pass
        pos = poses if positions is None else positions
        D = 2 if positions is None else pos.shape[1]
        if pos.dtype == np.float64 and pos.ndim == 2 and pos.shape[1] >= D:
            return k.same_run(idx, times, pos, D, float(max_run_dt), float(max_run_step * max_run_step))
    same = np.diff(idx) == 1
    same &= np.abs(np.diff(times.take(idx))) <= max_run_dt
    pos = (poses if positions is None else positions).take(idx, 0)   # take: ~3x faster than a fancy index here
    cols = np.ascontiguousarray(pos[:, :2 if positions is None else pos.shape[1]].T)
    d2 = np.zeros(len(idx) - 1)
    for c in cols:                   # the squared step, summed axis by axis (the order a (C, D) sum takes)
        d = c[1:] - c[:-1]
        d *= d
        d2 += d
    same &= d2 <= max_run_step * max_run_step
    return same


def _one_per_run(q: _Query, cand: np.ndarray, max_run_dt, max_run_step) -> np.ndarray:
    """One random frame per run of candidates; the run holding the newest frame is already served."""
    if len(cand) == 0:
        return cand
    cand = np.asarray(cand, np.int64)
    same = _same_run(cand, q.times, q.poses, max_run_dt, max_run_step, positions=q.pos if q.sixdof else None)
    brk = np.empty(len(cand), bool)                   # where a run starts (no run ids needed)
    brk[0] = True
    np.logical_not(same, out=brk[1:])
    starts = np.flatnonzero(brk)
    lengths = np.diff(np.append(starts, len(cand)))
    reps = cand[starts + (q.rng.random(len(starts)) * lengths).astype(np.int64)]
    own = np.flatnonzero(cand == q.newest)            # the newest frame's place, if it is a candidate
    if len(own):
        reps = np.delete(reps, int(np.searchsorted(starts, own[0], side="right")) - 1)
    return reps


def _farthest(q: _Query, pool: np.ndarray, chosen: np.ndarray, n: int) -> np.ndarray:
    """Farthest-point sampling of n frames from pool, far from chosen in space or time (§3.3 (2))."""
    if n <= 0 or len(pool) == 0:
        return np.zeros(0, np.int64)
    everything = np.concatenate([pool, chosen])
    xy, t = q.pos, q.times
    s_space = max(float(np.ptp(xy[everything], axis=0).max()), 1e-6)
    s_time = max(float(np.ptp(t[everything])), 1e-6)

    def dist(a: np.ndarray, b: int) -> np.ndarray:
        d = np.hypot(*(xy[a] - xy[b]).T) if xy.shape[1] == 2 else np.sqrt(((xy[a] - xy[b]) ** 2).sum(1))
        return np.maximum(d / s_space, np.abs(t[a] - t[b]) / s_time)

    dmin = np.full(len(pool), np.inf)
    for c in chosen:
        dmin = np.minimum(dmin, dist(pool, int(c)))
    out = []
    for _ in range(min(n, len(pool))):
        j = int(np.argmax(dmin))
        if dmin[j] == -np.inf:
            break
        out.append(pool[j])
        dmin = np.minimum(dmin, dist(pool, int(pool[j])))
        dmin[j] = -np.inf
    return np.asarray(out, np.int64)


# ---------------------------------------------------------------------------------- paper strategies


@strategy("fov")
def fov(q: _Query, fill: str = "candidates", **fov_params):
    """FOV candidates (§3.3) ranked by how many target poses they overlap, newest first on ties.

    Deterministic. Params: ``fill`` (see module doc) and the rule's thresholds (:class:`FovParams`, or
    :class:`FrustumParams` for 6-DoF poses).
    """
    cand, hits = _candidates(q, fov_params, hits=True)
    keep = cand != q.newest
    cand, hits = cand[keep], hits[keep]
    order = np.lexsort((-cand, -q.times[cand], -hits))
    return _fill(q, cand[order[: q.k - 1]], fill, cand)


@strategy("fov+random")
def fov_random(q: _Query, fill: str = "candidates", **fov_params):
    """FOV candidates (§3.3), then k - 1 of them uniformly at random (Table 3 "FOV+Random")."""
    cand, _ = _candidates(q, fov_params)
    return _fill(q, _choose(q.rng, _others(q, cand), q.k - 1), fill, cand)


@strategy("fov+nonadj")
def fov_nonadj(q: _Query, fill: str = "candidates", max_run_dt: float = 1.0, max_run_step: float = 1.0,
               **fov_params):
    """FOV candidates, one random frame per run of consecutive frames (§3.3 (1), Table 3 "FOV+Non-adj").

    Params: ``max_run_dt`` (time units) and ``max_run_step`` (metres) split runs (see :func:`runs`),
    ``fill``, and the FOV thresholds.
    """
    cand, _ = _candidates(q, fov_params)
    reps = _one_per_run(q, cand, max_run_dt, max_run_step)
    return _fill(q, _choose(q.rng, reps, q.k - 1), fill, cand)


@strategy("fov+nonadj+far")
def fov_nonadj_far(q: _Query, fill: str = "candidates", far_frac: float = 0.25, max_run_dt: float = 1.0,
                   max_run_step: float = 1.0, **fov_params):
    """``fov+nonadj`` plus frames far apart in space or time (§3.3 (2), Table 3 "+Far-space-time").

    n_far = round(far_frac * (k - 1)) slots (at least 1 when k >= 3). With more runs than k - 1, the
    n_far slots take the run representatives farthest (farthest-point sampling, from the newest
    frame) and the rest are random; with fewer, all representatives are kept and up to n_far more
    candidates are added by the same farthest-point rule.
    """
    if not 0.0 <= far_frac <= 1.0:
        raise ValueError(f"far_frac must be in [0, 1], got {far_frac}")
    cand, _ = _candidates(q, fov_params)
    reps = _one_per_run(q, cand, max_run_dt, max_run_step)
    slots = q.k - 1
    n_far = int(round(far_frac * slots))
    if slots >= 2 and far_frac > 0:
        n_far = max(1, n_far)
    newest = np.array([q.newest], np.int64)
    if len(reps) > slots:
        far = _farthest(q, reps, newest, n_far)
        rest = np.setdiff1d(reps, far)
        picked = np.concatenate([far, _choose(q.rng, rest, slots - len(far))])
    else:
        pool = np.setdiff1d(_others(q, cand), reps)
        extra = _farthest(q, pool, np.concatenate([newest, reps]), min(n_far, slots - len(reps)))
        picked = np.concatenate([reps, extra])
    return _fill(q, picked, fill, cand)


# ---------------------------------------------------------------------------------- baselines


@strategy("random")
def random(q: _Query):
    """Table 3 "Random": k - 1 frames uniformly at random from the whole memory."""
    return _random_others(q, q.k - 1)


@strategy("first")
def first(q: _Query):
    """Table 1 "1st Frame as Context": the oldest frame (plus, as always, the newest)."""
    return np.array([int(np.argmin(q.times))], np.int64)


@strategy("first+random")
def first_random(q: _Query):
    """Table 1 "1st Frame + Random Context": the oldest frame plus k - 2 random ones."""
    oldest = np.array([int(np.argmin(q.times))], np.int64)
    if oldest[0] == q.newest:
        return oldest
    return np.concatenate([oldest, _random_others(q, q.k - 2, exclude=oldest)])


@strategy("recent")
def recent(q: _Query):
    """DFoT-style window (Table 1; §3.3 alternative #2): the newest k frames."""
    return _newest_order(q, q.k - 1)


@strategy("framepack")
def framepack(q: _Query):
    """FramePack-style exponential thinning (Table 1; §3.3 alternative #3), without compression.

    FramePack gives the newest frame a full frame of tokens, the next one half, then a quarter, ...
    We keep frames whole, so we map the halving token share to a halving *sampling density*: slot j
    (j = 0 .. k-1) holds the frame of time-rank 2^j - 1 (ranks counted back from the newest: 0, 1,
    3, 7, 15, ...), i.e. the frames thin out exponentially going back in time. Ranks past the
    oldest frame are dropped, so short memories give fewer frames.
    """
    ranks = (1 << np.arange(1, q.k, dtype=np.int64)) - 1    # 1, 3, 7, ... (rank 0 is the newest)
    ranks = ranks[ranks < q.M]
    t = q.times
    if q.newest == q.M - 1 and not (t[1:] < t[:-1]).any():  # append-ordered: rank r is index M-1-r
        return q.M - 1 - ranks
    order = np.lexsort((np.arange(q.M), q.times))[::-1]     # newest first; O(M log M) for other clocks
    order = order[order != q.newest]
    return order[ranks - 1]
