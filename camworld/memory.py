"""MemoryBank: every frame a world has seen or generated, with its pose, time and cached latents.

The paper stores context *as frames* (§3, "storage format"), retrieves by camera pose (§3.3) and
encodes the retrieved frames (Algorithm 2, line 4). The bank keeps what those steps need:

* frames ``uint8 (H, W, 3)``; timestamps float64 (a step counter or seconds; float64 holds integers
  exactly up to 2**53); an optional ``source`` tag (int64, -1 = none; e.g. the agent id in a shared
  multi-agent world); an ``observed`` flag (bool): True for frames of the real world (a reset's first
  frame, ``World.observe``), False for frames a world generated. The learned world's reprojection
  prefers observed pixels (``camworld.model.warp.reproject``), so they are not resampled again and again;
* every frame's pose twice: full camera-to-world extrinsics ``[R|t]`` (3, 4) float64 (OpenCV axes,
  ``geometry``) and the planar pose ``(x, y, yaw)`` float64 that the paper's FOV rule reads. Append
  either one: planar poses are stored as given and their extrinsics derived
  (``geometry.planar_to_extrinsics``, camera at ``CAMERA_HEIGHT``); 6-DoF extrinsics (pitched,
  rolled, at any height) are stored as given and their planar pose derived (ground position and
  heading, ``geometry.extrinsics_to_planar``). The two never disagree;
* ``index``: a ``PoseGrid`` over the camera positions and headings, kept up to date lazily (it
  catches up with new frames when asked for), that retrieval uses to touch only nearby frames
  facing the right way (``camworld.retrieval.index``);
* a latent cache: ``set_latents`` stores the model's latents of a frame (numpy float32; torch
  tensors are converted with ``.detach().cpu().numpy()``), all of one shape fixed by the first
  write; ``get_latents`` says which frames have one, so no frame is ever encoded twice;
* ``meta``: a dict of JSON-serialisable extras (prompt, scene seed, ...) that ``save`` keeps.

Growth and bounds. Per-frame arrays are preallocated and doubled when full, so ``append`` is
amortised O(1) per frame. ``capacity`` bounds the frames (and their latents) held in RAM: when
it is exceeded, the oldest half of the RAM frames is *spilled* to ``np.memmap`` files in a private
temporary directory (removed by ``close``/``clear``/garbage collection). Indices never change and
spilled frames stay readable and their latents writable, so retrieval and the world's bookkeeping
are unaffected; only reads of old frames get slower. Poses, extrinsics, times, sources, the latent
mask, the observed flags and the index (about 160 bytes per frame: 24 planar pose, 96 extrinsics, 8 time,
8 source, 1 mask, 1 flag, 16-32 index) always stay in RAM because retrieval may read any pose.

Files. ``save(path)`` writes one uncompressed zip (``.npz``-compatible: ``np.load`` opens it with
``allow_pickle=False``) holding ``header.json`` (magic, version, shapes, meta) and ``.npy``
members, streamed in chunks so a spilled bank never has to fit in RAM; it is written to a temp
file and moved into place (``camworld.files.atomic_write``). ``MemoryBank.load`` checks magic, version
and shapes and says clearly when a file is truncated or foreign. No pickle anywhere. Version 2 adds
the ``extrinsics`` member; version 1 files (planar poses only) still load, their extrinsics derived
as they were then. Version 3 adds ``observed``; older files load with every frame unobserved (not known).

Letters: N frames in the bank, T frames appended at once, H/W frame size, L frames with latents,
K occupied cells of the index.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
import zipfile

import numpy as np

from camworld import geometry
from camworld.files import atomic_write

MAGIC = "camworld.MemoryBank"
VERSION = 3
READS = (1, 2, 3)         # file versions load() understands (1: planar poses only, extrinsics derived;
#                           1-2: no observed flags, all False)
_CHUNK_BYTES = 64 << 20   # streaming chunk for save/load


class _Spill:
    """A growable on-disk array (np.memmap) of items of one shape/dtype."""

    def __init__(self, path: str, item_shape: tuple, dtype):
        self.path, self.item_shape, self.dtype = path, tuple(item_shape), np.dtype(dtype)
        self.alloc, self.mm = 0, None

    def reserve(self, n: int):
        if n <= self.alloc:
            return
        new = max(n, 2 * self.alloc, 256)
        if self.mm is not None:
            self.mm.flush()
            self.mm = None
        with open(self.path, "ab") as f:
            f.truncate(new * int(np.prod(self.item_shape, dtype=np.int64)) * self.dtype.itemsize)
        self.mm = np.memmap(self.path, dtype=self.dtype, mode="r+", shape=(new,) + self.item_shape)
        self.alloc = new


class _Store:
    """One per-frame array: items [0, spilled) on disk, [spilled, n) in a growable RAM buffer."""

    def __init__(self, item_shape: tuple, dtype, spill_path_fn):
        self.item_shape, self.dtype = tuple(item_shape), np.dtype(dtype)
        self.ram = np.zeros((0,) + self.item_shape, self.dtype)
        self.n = self.spilled = 0
        self._spill_path_fn = spill_path_fn
        self.disk: _Spill | None = None

    def _reserve(self, n_ram: int):
        if n_ram > len(self.ram):
            buf = np.zeros((max(n_ram, 2 * len(self.ram), 16),) + self.item_shape, self.dtype)
            buf[: self.n - self.spilled] = self.ram[: self.n - self.spilled]
            self.ram = buf

    def extend(self, items: np.ndarray):
        T = len(items)
        self._reserve(self.n - self.spilled + T)
        self.ram[self.n - self.spilled: self.n - self.spilled + T] = items
        self.n += T

    def spill(self, upto: int):
        """Move items [spilled, upto) to disk and shift the RAM buffer down."""
        m = upto - self.spilled
        if m <= 0:
            return
        if self.disk is None:
            self.disk = _Spill(self._spill_path_fn(), self.item_shape, self.dtype)
        self.disk.reserve(upto)
        self.disk.mm[self.spilled:upto] = self.ram[:m]
        keep = self.n - upto
        self.ram[:keep] = self.ram[m:m + keep]
        self.spilled = upto
        if len(self.ram) > 4 * max(keep, 16):  # give back RAM after a large spill
            self.ram = self.ram[: 2 * max(keep, 16)].copy()

    def get(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx),) + self.item_shape, self.dtype)
        on_disk = idx < self.spilled
        if on_disk.any():
            out[on_disk] = self.disk.mm[idx[on_disk]]
        out[~on_disk] = self.ram[idx[~on_disk] - self.spilled]
        return out

    def set(self, idx: np.ndarray, items: np.ndarray):
        on_disk = idx < self.spilled
        if on_disk.any():
            self.disk.mm[idx[on_disk]] = items[on_disk]
        self.ram[idx[~on_disk] - self.spilled] = items[~on_disk]

    def chunks(self, rows: int):
        """Yield consecutive blocks of all n items, at most ``rows`` at a time (for streaming saves)."""
        for j in range(0, self.n, rows):
            yield self.get(np.arange(j, min(j + rows, self.n)))


def _poses_and_extrinsics(poses, T: int):
    """Appended poses -> (planar (T, 3), extrinsics (T, 3, 4)), the missing one derived (module doc)."""
    shape = np.shape(poses)
    if len(shape) >= 2 and shape[-2:] in ((3, 4), (4, 4)):
        e = geometry.as_extrinsics(poses, "poses").reshape(-1, 3, 4)
        if len(e) != T:
            raise ValueError(f"poses must be ({T}, 3, 4) extrinsics to match {T} frames, got shape {shape}")
        return geometry.extrinsics_to_planar(e), e
    p = np.asarray(poses, np.float64).reshape(-1, 3) if np.size(poses) == 3 * T else None
    if p is None or len(p) != T:
        raise ValueError(f"poses must be ({T}, 3) planar poses or ({T}, 3, 4) extrinsics to match {T} frames, "
                         f"got shape {shape}")
    if not np.isfinite(p).all():
        raise ValueError("poses contain NaN or inf: every (x, y, yaw) must be finite")
    return p, geometry.planar_to_extrinsics(p)


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor; torch itself is not imported here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class PoseGrid:
    """Camera poses bucketed by ground cell and heading bin: the index retrieval queries.

    A frame's bucket is its cell ``(floor(x / cell), floor(y / cell))`` (clamped to +-2**20 cells) and
    its heading bin: ``n_bins`` equal bins of the yaw, or the extra bin ``n_bins`` for a camera whose
    optical axis is steeper than 30 degrees (|forward z| > ``STEEP_SIN``), whose heading says little
    about what it sees. Bucket key = ``cell_id * (n_bins + 1) + bin``, so the buckets of one cell are
    contiguous. Frames ``[0, n_sorted)`` are held sorted by (key, frame index), with the list of
    occupied cells and where each starts; newer frames wait in an unsorted tail of at most
    ``tail_max`` frames, which queries scan directly, and are then merged in (O(N), so O(N / tail_max)
    per frame). Append-only: frames are never moved or removed (``MemoryBank.clear`` starts a new grid).

    It knows nothing of FOV rules: ``camworld.retrieval.index`` decides which buckets a query needs.
    """

    STEEP_SIN = 0.5      # |forward z| above this (pitch beyond 30 degrees): the steep bin
    OFFSET = 1 << 20     # cells per half axis; farther positions share the border cells

    def __init__(self, cell: float = 2.0, n_bins: int = 64, tail_max: int = 2048):
        if not cell > 0.0 or int(n_bins) < 1 or int(tail_max) < 1:
            raise ValueError(f"PoseGrid needs cell > 0 metres, n_bins >= 1, tail_max >= 1; got {cell}, {n_bins}, "
                             f"{tail_max}")
        self.cell, self.n_bins, self.tail_max = float(cell), int(n_bins), int(tail_max)
        self.bins_per_cell = self.n_bins + 1
        self.n = self.n_sorted = self.n_steep = 0
        self.keys = np.zeros(0, np.int64)        # (n_sorted,) bucket keys, sorted
        self.order = np.zeros(0, np.int64)       # (n_sorted,) frame index of each, increasing within a key
        self.cells = np.zeros(0, np.int64)       # (K,) occupied cell ids, sorted
        self.cell_start = np.zeros(1, np.int64)  # (K + 1,) where each cell's frames start in keys/order
        self._tail = np.zeros(self.tail_max, np.int64)

    def cell_index(self, v) -> np.ndarray:
        """Cell coordinate (offset to >= 0) of positions v (metres) along one axis."""
        c = np.floor(np.asarray(v, np.float64) / self.cell)
        return (np.clip(c, -self.OFFSET, self.OFFSET - 1) + self.OFFSET).astype(np.int64)

    def cell_id(self, ix, iy) -> np.ndarray:
        return np.asarray(ix, np.int64) * (2 * self.OFFSET) + np.asarray(iy, np.int64)

    def bin_of(self, yaw) -> np.ndarray:
        """Heading bin of yaws (radians, any branch): bin j holds wrapped yaws in [j, j + 1) * 2 pi / n_bins."""
        b = np.floor((np.asarray(yaw, np.float64) % (2 * np.pi)) * (self.n_bins / (2 * np.pi))).astype(np.int64)
        return np.minimum(b, self.n_bins - 1)

    def keys_of(self, xy: np.ndarray, yaw: np.ndarray, steep: np.ndarray | None = None) -> np.ndarray:
        b = self.bin_of(yaw)
        if steep is not None:
            b = np.where(steep, self.n_bins, b)
        return self.cell_id(self.cell_index(xy[:, 0]), self.cell_index(xy[:, 1])) * self.bins_per_cell + b

    def add(self, xy, yaw, steep=None):
        """Index the next frames: positions (T, 2), headings (T,), steep flags (T,) bool or None.

        New keys wait in the tail; once it holds ``tail_max`` or more they are sorted in at once (one
        merge per call at most, so a bulk add of N frames costs one O(N log N) sort)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        k = self.keys_of(xy, np.asarray(yaw, np.float64).reshape(-1), steep)
        if steep is not None:
            self.n_steep += int(np.count_nonzero(steep))
        have = self.n - self.n_sorted
        if have + len(k) > len(self._tail):
            self._tail = np.concatenate([self._tail[:have], np.zeros(max(have + len(k), self.tail_max) - have,
                                                                     np.int64)])
        self._tail[have:have + len(k)] = k
        self.n += len(k)
        if self.n - self.n_sorted >= self.tail_max:
            self._merge()

    def _merge(self):
        """Sort the tail in: one O(N) insert of T keys (np.insert keeps equal positions in value order)."""
        tail = self._tail[: self.n - self.n_sorted]
        o = np.argsort(tail, kind="stable")
        at = np.searchsorted(self.keys, tail[o], side="right")     # after equal keys: older frames first
        self.keys = np.insert(self.keys, at, tail[o])
        self.order = np.insert(self.order, at, o + self.n_sorted)
        cells = self.keys // self.bins_per_cell
        starts = np.flatnonzero(np.concatenate([[True], cells[1:] != cells[:-1]]))
        self.cells, self.cell_start = cells[starts], np.append(starts, len(cells))
        self.n_sorted = self.n
        if len(self._tail) > self.tail_max:
            self._tail = np.zeros(self.tail_max, np.int64)

    def occupied(self, ix0: int, ix1: int, iy0: int, iy1: int):
        """Occupied cells of the sorted part with ix0 <= ix <= ix1, iy0 <= iy <= iy1 (offset coordinates).

        Returns (positions into ``cells`` int64 (C,), row start flags bool (C,): True where a new ix row
        begins), rows in increasing ix, cells in increasing iy within a row.
        """
        ix = np.arange(ix0, ix1 + 1, dtype=np.int64)
        lo = np.searchsorted(self.cells, self.cell_id(ix, iy0), side="left")
        hi = np.searchsorted(self.cells, self.cell_id(ix, iy1), side="right")
        counts = hi - lo
        pos = ranges(lo, counts)
        first = np.zeros(len(pos), bool)
        first[np.cumsum(counts)[counts > 0] - counts[counts > 0]] = True
        return pos, first

    def holds(self, rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Is frame rows[i] filed under keys[i]? bool (len(rows),) (a consistency check, O(log N) each)."""
        rows, keys = np.asarray(rows, np.int64), np.asarray(keys, np.int64)
        out = np.zeros(len(rows), bool)
        tail = rows >= self.n_sorted
        out[tail] = self._tail[rows[tail] - self.n_sorted] == keys[tail]
        # sorted part: (key, frame) pairs are sorted lexicographically, so bisect on key * N + frame
        i = np.flatnonzero(~tail & (rows >= 0))
        if len(i) and self.n_sorted:
            lo = np.searchsorted(self.keys, keys[i], "left")
            hi = np.searchsorted(self.keys, keys[i], "right")
            for a, b, r, o in zip(lo, hi, rows[i], i):
                j = a + int(np.searchsorted(self.order[a:b], r))
                out[o] = j < b and self.order[j] == r
        return out

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.keys, self.order, self.cells, self.cell_start, self._tail))


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate arange(s, s + c) for every (s, c): int64 (sum(counts),)."""
    starts, counts = np.asarray(starts, np.int64), np.asarray(counts, np.int64)
    keep = counts > 0
    starts, counts = starts[keep], counts[keep]
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    step = np.ones(total, np.int64)
    head = np.cumsum(counts)[:-1]                         # where each range after the first begins
    step[0] = starts[0]
    step[head] = starts[1:] - (starts[:-1] + counts[:-1] - 1)
    return np.cumsum(step)


class MemoryBank:
    """Frames, poses, times, sources and cached latents of one world (or one shared world).

    Args:
        frame_shape: (H, W, 3) of every frame.
        capacity: frames kept in RAM; older ones spill to disk (see module doc). >= 1.
        spill_dir: where the spill directory is created (default: the system temp dir).
        meta: JSON-serialisable extras kept by ``save``.
    """

    def __init__(self, frame_shape=(64, 64, 3), capacity: int = 100_000, spill_dir: str | None = None,
                 meta: dict | None = None):
        fs = tuple(int(s) for s in frame_shape)
        if len(fs) != 3 or fs[2] != 3 or min(fs) < 1:
            raise ValueError(f"frame_shape must be (H, W, 3), got {frame_shape}")
        if isinstance(capacity, bool) or int(capacity) < 1:
            raise ValueError(f"capacity must be an int >= 1 (frames kept in RAM), got {capacity!r}")
        self.frame_shape, self.capacity = fs, int(capacity)
        self.spill_dir = spill_dir
        self.meta: dict = dict(meta or {})
        self._tmp: str | None = None
        self._finalizer = None
        self._reset()

    # ------------------------------------------------------------------ state

    def _reset(self):
        self._n = 0
        self._poses = np.zeros((16, 3))
        self._ext = np.zeros((16, 3, 4))
        self._times = np.zeros(16)
        self._sources = np.full(16, -1, np.int64)
        self._has_lat = np.zeros(16, bool)
        self._observed = np.zeros(16, bool)
        self._frames = _Store(self.frame_shape, np.uint8, lambda: self._spill_path("frames"))
        self._lat: _Store | None = None
        self.latent_shape: tuple | None = None
        self._grid = PoseGrid()
        # what frame sources derive from a frame and keep with the bank (e.g. ModelFrames' learned depth,
        # {"depth": {index: array}}): forgotten with the frames, never saved
        self.derived: dict = {}

    def _spill_path(self, name: str) -> str:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="camworld-memory-", dir=self.spill_dir)
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        return os.path.join(self._tmp, name + ".bin")

    def close(self):
        """Delete the spill files (the bank is empty afterwards)."""
        self._frames = self._lat = None
        if self._finalizer is not None:
            self._finalizer()
        self._tmp = self._finalizer = None
        self._reset()

    def clear(self):
        """Forget every frame (new episode); keeps frame_shape, capacity and meta."""
        self.close()

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (f"MemoryBank(n={self._n}, frame_shape={self.frame_shape}, capacity={self.capacity}, "
                f"spilled={self.spilled}, latent_shape={self.latent_shape})")

    @property
    def spilled(self) -> int:
        """How many of the oldest frames live on disk."""
        return self._frames.spilled

    def _ro(self, a: np.ndarray) -> np.ndarray:
        v = a[: self._n]
        v.flags.writeable = False
        return v

    @property
    def poses(self) -> np.ndarray:
        """float64 (N, 3) planar poses, a read-only view (no copy)."""
        return self._ro(self._poses)

    @property
    def times(self) -> np.ndarray:
        """float64 (N,) timestamps, a read-only view."""
        return self._ro(self._times)

    @property
    def sources(self) -> np.ndarray:
        """int64 (N,) source tags (-1 = none), a read-only view."""
        return self._ro(self._sources)

    @property
    def observed(self) -> np.ndarray:
        """bool (N,): True for frames of the real world (``append(..., observed=True)``), a read-only view."""
        return self._ro(self._observed)

    @property
    def has_latents(self) -> np.ndarray:
        """bool (N,) whether a frame's latents are cached, a read-only view."""
        return self._ro(self._has_lat)

    def extrinsics(self, idx=None) -> np.ndarray:
        """Camera-to-world [R|t] float64: all (N, 3, 4) as a read-only view when idx is None, else a copy
        (len(idx), 3, 4)."""
        return self._ro(self._ext) if idx is None else self._ext[self._index(idx)]

    @property
    def index(self) -> PoseGrid:
        """The pose index (``PoseGrid``) over every frame, brought up to date first (O(new frames))."""
        g = self._grid
        if g.n < self._n:
            a, b = g.n, self._n
            g.add(self._poses[a:b, :2], self._poses[a:b, 2], np.abs(self._ext[a:b, 2, 2]) > PoseGrid.STEEP_SIN)
        return g

    # ------------------------------------------------------------------ writing

    def _grow(self, n: int):
        if n <= len(self._poses):
            return
        new = max(n, 2 * len(self._poses))
        for name, fillv in (("_poses", 0.0), ("_ext", 0.0), ("_times", 0.0), ("_sources", -1), ("_has_lat", False),
                           ("_observed", False)):
            old = getattr(self, name)
            buf = np.full((new,) + old.shape[1:], fillv, old.dtype)
            buf[: self._n] = old[: self._n]
            setattr(self, name, buf)

    def append(self, frames, poses, times=None, source=None, extrinsics=None, observed=False) -> np.ndarray:
        """Append T frames. Amortised O(1) per frame.

        Args:
            frames: uint8 (T, H, W, 3) (or (H, W, 3) for one frame).
            poses: (T, 3) planar poses (x, y, yaw), or (T, 3, 4) / (T, 4, 4) camera-to-world extrinsics
                (6-DoF; see module doc); finite.
            times: (T,) timestamps; default continues a step counter (last time + 1, + 2, ...).
            source: None, an int, or (T,) ints tagging who produced the frames.
            extrinsics: with planar ``poses`` only: the frames' full extrinsics (T, 3, 4), stored as
                given instead of derived (copying frames between banks); they must have the poses'
                ground position and heading.
            observed: True (or (T,) bools) for frames of the real world, False for generated ones.

        Returns:
            int64 (T,) indices of the new frames (stable for the bank's lifetime).
        """
        f = np.asarray(frames)
        if f.ndim == 3:
            f = f[None]
        if f.dtype != np.uint8 or f.shape[1:] != self.frame_shape:
            raise ValueError(f"frames must be uint8 (T, {', '.join(map(str, self.frame_shape))}), got {f.dtype} "
                             f"{f.shape}; convert with np.clip(x, 0, 255).astype(np.uint8) or make the bank with "
                             f"frame_shape={f.shape[1:]}")
        T = len(f)
        p, e = _poses_and_extrinsics(poses, T)
        if extrinsics is not None:
            if np.shape(poses)[-1:] != (3,) or len(np.shape(poses)) > 2:
                raise ValueError("extrinsics= goes with planar poses (T, 3); 6-DoF frames pass their extrinsics as poses")
            e = _checked_extrinsics(extrinsics, p, "extrinsics")
        return self._append(f, p, e, times, source, observed)

    def _append(self, f, p, e, times, source, observed=False) -> np.ndarray:
        """Append validated frames f (T, H, W, 3), planar poses p (T, 3) and extrinsics e (T, 3, 4)."""
        T = len(f)
        if times is None:
            start = self._times[self._n - 1] + 1 if self._n else 0.0
            t = start + np.arange(T, dtype=np.float64)
        else:
            t = np.asarray(times, np.float64).reshape(-1)
            if t.shape != (T,) or not np.isfinite(t).all():
                raise ValueError(f"times must be ({T},) finite numbers, got {np.shape(times)}")
        if source is None:
            s = np.full(T, -1, np.int64)
        else:
            s = np.broadcast_to(np.asarray(source), (T,))
            if not np.issubdtype(s.dtype, np.integer):
                raise ValueError(f"source must be an int or (T,) ints, got dtype {s.dtype}")
        o = np.broadcast_to(np.asarray(observed), (T,))
        if o.dtype != bool:
            raise ValueError(f"observed must be a bool or (T,) bools, got dtype {o.dtype}")
        n0 = self._n
        self._grow(n0 + T)
        self._poses[n0:n0 + T], self._ext[n0:n0 + T] = p, e
        self._times[n0:n0 + T], self._sources[n0:n0 + T] = t, s
        self._has_lat[n0:n0 + T] = False
        self._observed[n0:n0 + T] = o
        self._frames.extend(f)
        if self._lat is not None:
            self._lat.extend(np.zeros((T,) + self.latent_shape, np.float32))
        self._n = n0 + T
        if self._n - self._frames.spilled > self.capacity:
            upto = self._n - max(self.capacity // 2, min(self.capacity, T))  # keep the newest half in RAM
            self._frames.spill(upto)
            if self._lat is not None:
                self._lat.spill(upto)
        return np.arange(n0, n0 + T, dtype=np.int64)

    # ------------------------------------------------------------------ reading

    def _index(self, idx) -> np.ndarray:
        i = np.asarray(idx)
        if i.dtype == bool:
            i = np.flatnonzero(i)
        i = i.astype(np.int64, copy=False).reshape(-1) if np.issubdtype(i.dtype, np.integer) or i.size == 0 else None
        if i is None:
            raise ValueError(f"indices must be integers, got dtype {np.asarray(idx).dtype}")
        if len(i) and (i.min() < 0 or i.max() >= self._n):
            raise IndexError(f"memory index out of range: valid 0..{self._n - 1}, got {i.min()}..{i.max()}")
        return i

    def frames(self, idx) -> np.ndarray:
        """uint8 (len(idx), H, W, 3) copies (one int gives (H, W, 3))."""
        out = self._frames.get(self._index(idx))
        return out[0] if np.ndim(idx) == 0 else out

    def get_latents(self, idx):
        """Cached latents: (list of float32 arrays or None, bool mask (len(idx),) of which exist)."""
        i = self._index(idx)
        have = self._has_lat[i].copy()
        if self._lat is None:
            return [None] * len(i), have
        vals = self._lat.get(i)
        return [vals[j] if have[j] else None for j in range(len(i))], have

    def set_latents(self, idx, latents):
        """Cache latents for frames idx: (len(idx), *latent_shape) array, a list of arrays, or a torch tensor.

        The first write fixes ``latent_shape``; later writes must match it.
        """
        i = self._index(idx)
        if isinstance(latents, (list, tuple)):
            z = np.stack([_to_numpy(x) for x in latents]) if len(latents) else np.zeros((0,))
        else:
            z = _to_numpy(latents)
        z = np.asarray(z, np.float32)
        if len(i) == 0:
            return
        if z.ndim < 1 or len(z) != len(i):
            raise ValueError(f"latents must be (len(idx)={len(i)}, ...), got shape {z.shape}")
        if self.latent_shape is None:
            self.latent_shape = tuple(z.shape[1:])
            self._lat = _Store(self.latent_shape, np.float32, lambda: self._spill_path("latents"))
            self._lat.extend(np.zeros((self._n,) + self.latent_shape, np.float32))
            self._lat.spill(self._frames.spilled)
        elif tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"latents must have shape (len(idx), {', '.join(map(str, self.latent_shape))}) as set by "
                             f"the first write, got {z.shape}; clear() the bank to change the latent shape")
        if not np.isfinite(z).all():
            raise ValueError("latents contain NaN or inf")
        self._lat.set(i, z)
        self._has_lat[i] = True

    # ------------------------------------------------------------------ files

    def save(self, path, durable: bool = False) -> None:
        """Write the whole bank to one file, all-or-nothing (``camworld.files.atomic_write``; ``durable``:
        fsynced too). See module doc."""
        path = os.fspath(path)
        header = dict(magic=MAGIC, version=VERSION, n=self._n, frame_shape=list(self.frame_shape),
                      latent_shape=None if self.latent_shape is None else list(self.latent_shape),
                      capacity=self.capacity, meta=self.meta)
        try:
            header_bytes = json.dumps(header).encode()
        except TypeError as e:
            raise ValueError(f"meta must be JSON-serialisable (str, numbers, lists, dicts): {e}") from None

        def write(tmp):
            with open(tmp, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                zf.writestr("header.json", header_bytes)
                for name, arr in (("poses", self.poses), ("extrinsics", self.extrinsics()), ("times", self.times),
                                  ("sources", self.sources), ("observed", self.observed)):
                    _write_npy(zf, name, arr.dtype, arr.shape, [np.ascontiguousarray(arr)])
                rows = max(1, _CHUNK_BYTES // int(np.prod(self.frame_shape)))
                _write_npy(zf, "frames", np.uint8, (self._n,) + self.frame_shape, self._frames.chunks(rows))
                li = np.flatnonzero(self.has_latents)
                _write_npy(zf, "latent_index", np.int64, li.shape, [li])
                if self._lat is not None:
                    lrows = max(1, _CHUNK_BYTES // (4 * int(np.prod(self.latent_shape))))
                    blocks = (self._lat.get(li[j:j + lrows]) for j in range(0, len(li), lrows))
                    _write_npy(zf, "latents", np.float32, (len(li),) + self.latent_shape, blocks)

        atomic_write(path, write, prefix=".memory-", durable=durable)

    @classmethod
    def load(cls, path, capacity: int | None = None, spill_dir: str | None = None) -> "MemoryBank":
        """Read a bank written by ``save``; ``capacity`` defaults to the saved one (spills as needed)."""
        path = os.fspath(path)
        what = f"{path!r} is not a camworld MemoryBank file"
        try:
            zf = zipfile.ZipFile(path, "r")
        except zipfile.BadZipFile:
            raise ValueError(f"{what}, or it is truncated (not a complete zip archive); save it again "
                             f"with MemoryBank.save") from None
        with zf:
            try:
                header = json.loads(zf.read("header.json"))
            except KeyError:
                raise ValueError(f"{what}: it has no header.json member") from None
            except (ValueError, zipfile.BadZipFile, OSError) as e:
                raise ValueError(f"{what}: unreadable header ({e}); the file may be truncated") from None
            magic = header.get("magic") if isinstance(header, dict) else None
            if magic != MAGIC:
                raise ValueError(f"{what}: header magic is {magic!r}, expected {MAGIC!r}")
            version = header.get("version")
            if version not in READS:
                raise ValueError(f"{path!r} is MemoryBank format version {version!r}; this camworld reads versions "
                                 f"{', '.join(map(str, READS))}")
            bank = cls(frame_shape=tuple(header["frame_shape"]),
                       capacity=int(header["capacity"] if capacity is None else capacity),
                       spill_dir=spill_dir, meta=header.get("meta") or {})
            n = int(header["n"])
            try:
                poses = _read_npy_all(zf, "poses", (n, 3))
                times = _read_npy_all(zf, "times", (n,))
                sources = _read_npy_all(zf, "sources", (n,))
                observed = _read_npy_all(zf, "observed", (n,)).astype(bool) if version >= 3 else np.zeros(n, bool)
                ext = _checked_extrinsics(_read_npy_all(zf, "extrinsics", (n, 3, 4)), poses, path) if version >= 2 \
                    else _poses_and_extrinsics(poses, n)[1]                        # version 1: derived, as then
                off = 0
                for block in _read_npy(zf, "frames", (n,) + bank.frame_shape):
                    T = len(block)
                    if T == 0:
                        continue
                    if not np.isfinite(poses[off:off + T]).all():
                        raise ValueError(f"{path!r}: poses contain NaN or inf")
                    bank._append(block, poses[off:off + T], ext[off:off + T], times[off:off + T],
                                 sources[off:off + T], observed[off:off + T])
                    off += T
                li = _read_npy_all(zf, "latent_index", None)
                if header.get("latent_shape") is not None and len(li):
                    off = 0
                    for block in _read_npy(zf, "latents", (len(li),) + tuple(header["latent_shape"])):
                        if len(block) == 0:
                            continue
                        bank.set_latents(li[off:off + len(block)], block)
                        off += len(block)
            except KeyError as e:
                raise ValueError(f"{path!r}: MemoryBank file lacks member {e}; it may be truncated or "
                                 f"written by something else") from None
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise ValueError(f"{path!r}: MemoryBank file is damaged or truncated ({e})") from None
            if len(bank) != n:
                raise ValueError(f"{path!r}: header says {n} frames, file holds {len(bank)}; it may be truncated")
        return bank


def _checked_extrinsics(ext: np.ndarray, poses: np.ndarray, path) -> np.ndarray:
    """Extrinsics (N, 3, 4) given with planar poses (N, 3) (a file's, or append's), validated and checked
    against them: same ground position and heading."""
    try:
        e = geometry.as_extrinsics(ext, "extrinsics").reshape(-1, 3, 4)
    except ValueError as err:
        raise ValueError(f"{path!r}: {err}") from None
    if len(e) != len(poses):
        raise ValueError(f"{path!r}: {len(e)} extrinsics for {len(poses)} planar poses")
    back = geometry.extrinsics_to_planar(e)
    bad = (np.abs(back[:, :2] - poses[:, :2]).max(1, initial=0.0) > 1e-6) | (
        np.abs(geometry.wrap_angle(back[:, 2] - poses[:, 2])) > 1e-6)
    if bad.any():
        raise ValueError(f"{path!r}: planar poses and extrinsics disagree at frames {np.flatnonzero(bad)[:5].tolist()}; "
                         "the file is damaged or was written by something else")
    return e


# ---------------------------------------------------------------------- .npy members, streamed


def _write_npy(zf: zipfile.ZipFile, name: str, dtype, shape, blocks):
    """Write an .npy member whose rows come from an iterable of blocks (never all in RAM at once)."""
    d = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
         "shape": tuple(int(s) for s in shape)}
    with zf.open(name + ".npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array_header_2_0(fh, d)
        for b in blocks:
            fh.write(np.ascontiguousarray(b, dtype=dtype).tobytes())


def _read_npy(zf: zipfile.ZipFile, name: str, shape):
    """Yield row blocks of an .npy member, checking its dtype and (if given) shape."""
    with zf.open(name + ".npy", "r") as fh:
        try:
            major, _ = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shp, fortran, dtype = reader(fh)
        except ValueError as e:
            raise ValueError(f"member {name}.npy is not a valid .npy array ({e})") from None
        if dtype.hasobject or fortran:
            raise ValueError(f"member {name}.npy has an object or Fortran-order array; refusing to read it")
        if shape is not None and tuple(shp) != tuple(shape):
            raise ValueError(f"member {name}.npy has shape {shp}, expected {tuple(shape)}")
        row = int(np.prod(shp[1:], dtype=np.int64)) * dtype.itemsize if len(shp) else dtype.itemsize
        rows = max(1, _CHUNK_BYTES // max(row, 1))
        left = shp[0] if len(shp) else 1
        if left == 0:
            yield np.zeros(tuple(shp), dtype)
        while left > 0:
            m = min(rows, left)
            buf = fh.read(m * row)
            if len(buf) != m * row:
                raise EOFError(f"member {name}.npy ends early")
            yield np.frombuffer(buf, dtype).reshape((m,) + tuple(shp[1:]))
            left -= m


def _read_npy_all(zf, name, shape) -> np.ndarray:
    blocks = list(_read_npy(zf, name, shape))
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
