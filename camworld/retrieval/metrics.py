"""Retrieval quality against ground-truth co-visibility (``covis.py``) on sim trajectories.

One *query* is a target segment ``[s, s + T)`` of an episode with memory ``[0, s)`` (inference-
like: only the past, newest frame ``s - 1``). Per selection (the indices a strategy returned):

* **precision**: fraction of the retrieved frames (all but the always-included newest) that are
  truly co-visible, i.e. see at least ``thr`` of the segment's non-sky sampled pixels.
* **recall@k**: truly co-visible retrieved frames / min(#truly co-visible, k - 1), so 1 is reachable
  at every k (plain recall would be capped at (k - 1) / #truly co-visible).
* **coverage**: fraction of the segment's non-sky sampled pixels seen by at least one selected
  frame, newest included: how much of what must be generated the context actually shows.
* **new_coverage**: the same over only the pixels the newest frame does NOT see, i.e. what the
  retrieved memory adds to the newest frame (undefined when the newest frame sees everything).
* **redundancy**: mean over pairs of selected frames of the symmetric co-visibility
  (covis(a, b) + covis(b, a)) / 2; lower means less duplicated context.

Means skip undefined values (no retrieved frame, no co-visible frame, fewer than two selected).

Letters: N episode frames, M memory frames, T segment frames, G sampled pixels per frame, Pv valid
target pixels of a segment, S selected frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from camworld.retrieval.covis import covisibility, visibility

METRICS = ("precision", "recall", "coverage", "new_coverage", "redundancy")


@dataclass
class Episode:
    """A rendered trajectory: poses (N, 3), z-depth (N, H, W) metres, and a pairwise co-vis cache."""

    poses: np.ndarray
    depth: np.ndarray
    name: str = ""
    indoor: bool = False
    grid: int = 16
    _pair: dict = field(default_factory=dict, repr=False)

    def pair_covis(self, idx: np.ndarray) -> np.ndarray:
        """Co-visibility among frames idx (S,) -> (S, S) (source row, destination column), cached."""
        idx = np.asarray(idx, np.int64)
        for a in idx:
            missing = [int(b) for b in idx if (int(a), int(b)) not in self._pair]
            if missing:
                c = covisibility(self.depth[a], self.poses[a], self.depth[missing], self.poses[missing],
                                 grid=self.grid)[0]
                self._pair.update({(int(a), b): float(v) for b, v in zip(missing, c)})
        return np.array([[self._pair[(int(a), int(b))] for b in idx] for a in idx])


@dataclass
class Query:
    """Ground truth of one target segment: which memory frame sees which valid target pixel."""

    segment: np.ndarray      # int64 (T,) frame indices of the target segment
    memory: np.ndarray       # int64 (M,) = arange(s)
    seen: np.ndarray         # bool (M, Pv)
    thr: float = 0.1

    @property
    def covis(self) -> np.ndarray:
        """(M,) fraction of the segment's valid pixels each memory frame sees."""
        return self.seen.mean(1) if self.seen.shape[1] else np.zeros(len(self.memory))

    @property
    def newest(self) -> int:
        return int(self.memory[-1])

    @property
    def truth(self) -> np.ndarray:
        """Truly co-visible memory frames other than the newest: int64 indices."""
        t = np.flatnonzero(self.covis >= self.thr)
        return t[t != self.newest]


def make_query(ep: Episode, start: int, length: int, thr: float = 0.1) -> Query:
    """Ground truth for the segment [start, start + length) with memory [0, start)."""
    seg = np.arange(start, start + length)
    mem = np.arange(start)
    seen, valid = visibility(ep.depth[seg], ep.poses[seg], ep.depth[mem], ep.poses[mem], grid=ep.grid)  # (T, M, G)
    seen = seen.transpose(1, 0, 2).reshape(len(mem), -1)[:, valid.reshape(-1)]                      # (M, Pv)
    return Query(seg, mem, seen, thr)


def score(ep: Episode, q: Query, selected, k: int) -> dict:
    """Metrics of one selection (memory indices, newest included) for one query; NaN where undefined."""
    sel = np.unique(np.asarray(selected, np.int64))
    got = sel[sel != q.newest]
    truth = q.truth
    hit = np.intersect1d(got, truth)
    out = dict(
        precision=len(hit) / len(got) if len(got) else np.nan,
        recall=len(hit) / min(len(truth), k - 1) if len(truth) and k > 1 else np.nan,
        coverage=float(q.seen[sel].any(0).mean()) if q.seen.shape[1] and len(sel) else np.nan,
        new_coverage=np.nan,
        redundancy=np.nan,
        n=len(sel),
    )
    fresh = ~q.seen[q.newest]
    if fresh.any():
        out["new_coverage"] = float(q.seen[got][:, fresh].any(0).mean()) if len(got) else 0.0
    if len(sel) >= 2:
        C = ep.pair_covis(sel)
        sym = 0.5 * (C + C.T)
        out["redundancy"] = float(sym[np.triu_indices(len(sel), 1)].mean())
    return out


def oracle(q: Query, k: int) -> np.ndarray:
    """Greedy maximum coverage on the TRUE visibility: an upper reference for ``coverage``."""
    sel = [q.newest]
    covered = q.seen[q.newest].copy()
    gains = q.seen.astype(np.float32)
    for _ in range(k - 1):
        g = gains @ (~covered).astype(np.float32)
        g[sel] = -1
        j = int(np.argmax(g))
        if g[j] <= 0:
            break
        sel.append(j)
        covered |= q.seen[j]
    return np.sort(np.asarray(sel, np.int64))
