"""Training samples from recorded posed videos (``camworld train --data DIR``): paper Algorithm 1 over
files, drawn the way ``camworld.data`` draws them from the sim.

Per sample: a video of this rank's shard (chance proportional to its length), a window of
``train.trajectory_frames`` model frames (every ``stride``-th video frame; played backwards in
``reverse_prob`` of the windows, as on-the-fly training walks its tracks), a target segment in it, then
``camworld.data.segment_context``: the frame before the segment (or before a gap) and k - 1 frames
retrieved from the rest of the window. In ``train.revisit_prob`` of the samples the segment is put where the
camera returns to a pose seen earlier, when the window has one (the on-the-fly stream builds such returns
into half its samples). Only the frames a sample needs are decoded, cropped to the model's horizontal
field of view and resized to its frame size.

Everything random comes from the batch's generator, a function of (seed, step, rank), and the videos are
fixed by the run's ``data_index.json``, so a batch is a pure function of (seed, step, rank): render workers,
inline runs and resumed runs see the same stream. Under DDP rank r samples only videos r, r + W, ...

Letters: L window frames, Ft target frames, Fc context frames, S model frame size.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camworld.geometry import extrinsics_to_planar
from camworld.recorded import DataError, DatasetIndex, load_cameras, open_dataset
from camworld.recorded import schema as S
from camworld.recorded.frames import decode_mp4, fov_crop, read_images
from camworld.recorded.reader import image_files

SIM_FPS = 30.0          # on-the-fly training: 30 fps sim walks, every train.frame_stride-th frame
INDEX_FILE = "data_index.json"
_MAX_REDRAWS = 64


@dataclass(frozen=True)
class DataConfig:
    """Where the recorded videos are and how to cut samples from them."""

    root: str                    # a camworld.posed-videos data set (docs/DATA.md)
    stride: int = 0              # video frames per model frame; 0: round(video fps / (30 / train.frame_stride))
    reverse_prob: float = 0.5    # windows played backwards, as the sim stream does (static scenes; 0 if they move)
    skip_bad: bool = False       # leave bad videos out and count them, instead of stopping with the file's name
    revisit_m: float = 0.5       # a frame revisits when the camera was this near its centre ...
    revisit_deg: float = 17.0    # ... and viewing direction earlier or later, and left in between
    cache_mb: int = 1024         # when all videos at the model's frame size fit in this, each process decodes each
    #                              video once and keeps it (same frames, no per-sample decoding); else windows stream


def retrieve_context(strategy: str, mem_c2w, mem_times, tgt_c2w, k: int, rng, planar: bool) -> np.ndarray:
    """The one place recorded training retrieves context (``camworld.retrieval.retrieve``: memory indices,
    newest included). Planar cameras (level, constant height) go in as their exact (x, y, yaw), so the
    paper's planar FOV rule runs, as on the sim; other cameras go in as full camera-to-world matrices,
    so the 6-DoF frustum rule (``camworld.retrieval.frustum``) runs."""
    from camworld.retrieval import retrieve

    if planar:
        return retrieve(strategy, extrinsics_to_planar(mem_c2w[:, :3]), mem_times,
                        extrinsics_to_planar(tgt_c2w[:, :3]), k, rng)
    return retrieve(strategy, mem_c2w, mem_times, tgt_c2w, k, rng)


def revisit_frames(c2w, metres: float, degrees: float) -> np.ndarray:
    """bool (L,): frame i is a revisit when the camera was near its pose (centre within ``metres``, viewing
    direction within ``degrees``) at some frame j, then left (some frame between j and i is not near), and
    came back. Turning on the spot or standing still is not a revisit; the return half of an excursion is.
    ``c2w`` (L, 4, 4)."""
    pos, fwd = c2w[:, :3, 3], c2w[:, :3, 2]
    near = np.linalg.norm(pos[:, None] - pos[None], axis=-1) < metres               # (L, L)
    near &= np.einsum("id,jd->ij", fwd, fwd) > np.cos(np.deg2rad(degrees))
    L = len(c2w)
    I, J = np.arange(L)[:, None], np.arange(L)[None]
    lo = np.where(~near & (J < I), J, -1).max(1)[:, None]    # the run of near frames around i is (lo, hi)
    hi = np.where(~near & (J > I), J, L).min(1)[:, None]
    return (near & ((J < lo) | (J > hi))).any(1)


# ---------------------------------------------------------------- per-process caches (main and workers)


@functools.lru_cache(maxsize=4)
def _load_index(path: str) -> DatasetIndex:
    return DatasetIndex.load(path)


@dataclass
class _Video:
    info: object
    vdir: Path
    c2w: np.ndarray          # (F, 4, 4)
    crop: tuple              # (x0, y0, side) square at the model's FOV
    files: list              # image frames, or [] for an mp4
    captions: dict


@functools.lru_cache(maxsize=64)
def _open_video(root: str, info, hfov_deg: float) -> _Video:
    vdir = Path(root) / info.path
    cams = load_cameras(vdir)
    x0, y0, side, _ = fov_crop(cams["intrinsics"][0], info.width, info.height, hfov_deg)
    caps = json.loads((vdir / S.CAPTIONS_FILE).read_text()) if (vdir / S.CAPTIONS_FILE).exists() else {}
    files = image_files(vdir) if info.source == "images" else []
    if files and len(files) != info.frames:
        raise DataError(vdir / S.FRAMES_DIR, f"now has {len(files)} frames, the run's index says {info.frames}")
    return _Video(info, vdir, cams["c2w"], (x0, y0, side), files, caps)


@functools.lru_cache(maxsize=None)   # only used when prepare() found that every video fits in cache_mb
def _decoded(root: str, info, hfov_deg: float, size: int) -> np.ndarray:
    """All frames of a video at the model's size (the very frames a window read gives)."""
    v = _open_video(root, info, hfov_deg)
    if v.files:
        return read_images(v.files, v.crop, size)
    return decode_mp4(v.vdir / S.VIDEO_FILE, np.arange(v.info.frames), v.crop, size, v.info.width, v.info.height)


def _caption(v: _Video, frame: int):
    for s in v.captions.get("segments", []):
        if s["start"] <= frame < s["end"]:
            return s["text"]
    return v.captions.get("scene") or None


_warned: set = set()


def _warn_once(key, msg: str):
    if key not in _warned:
        _warned.add(key)
        print(f"camworld train --data: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the source


@dataclass(frozen=True)
class RecordedSource:
    """Picklable handle on a prepared data set (what a render worker receives); see ``prepare``."""

    index_path: str
    data: DataConfig
    hfov_deg: float
    frame_stride: int        # train.frame_stride: the model's frame rate is 30 / frame_stride fps
    rank: int = 0
    world: int = 1
    cache: bool = False      # keep decoded videos in memory (prepare decides: the data set fits in cache_mb)

    @property
    def cameras(self) -> str:
        """What a DiT trained on these videos can generate (its checkpoint record's ``cameras``, read by
        ``camworld.model.frames.checkpoint_cameras``): "planar" when every video's cameras are, else "6dof"."""
        return "planar" if _load_index(self.index_path).planar else "6dof"

    def stride(self, info) -> int:
        return self.data.stride or max(1, int(round(info.fps * self.frame_stride / SIM_FPS)))

    def videos(self, heldout: bool = False) -> list:
        """This rank's training videos (every world-th from the rank-th), or the held-out ones (all of
        them; the training videos when there are none)."""
        return _shard(self, heldout)[0]

    def _pick(self, rng, heldout: bool) -> _Video:
        videos, cum = _shard(self, heldout)
        v = videos[int(np.searchsorted(cum, rng.integers(cum[-1]), side="right"))]
        return _open_video(_load_index(self.index_path).root, v, self.hfov_deg)

    def _window(self, rng, v: _Video, L_max: int, reverse: bool) -> np.ndarray:
        s = self.stride(v.info)
        L = min(L_max, (v.info.frames - 1) // s + 1)
        a = int(rng.integers(0, v.info.frames - s * (L - 1)))
        idx = a + s * np.arange(L)
        return idx[::-1].copy() if reverse and rng.random() < self.data.reverse_prob else idx

    def _read(self, v: _Video, frames: np.ndarray, size: int) -> np.ndarray:
        if self.cache:
            return _decoded(_load_index(self.index_path).root, v.info, self.hfov_deg, size)[frames]
        u, inv = np.unique(frames, return_inverse=True)
        if v.files:
            out = read_images([v.files[i] for i in u], v.crop, size)
        else:
            out = decode_mp4(v.vdir / S.VIDEO_FILE, u, v.crop, size, v.info.width, v.info.height, v.info.seek_fps)
        return out[inv]

    def _retry(self, draw, rng):
        """``draw(rng)`` again when a video turns out unreadable and ``skip_bad`` is on (the same rng goes on,
        so the stream stays a pure function of the step: a bad file fails the same way in every process)."""
        for _ in range(_MAX_REDRAWS):
            try:
                return draw(rng)
            except DataError as e:
                if not self.data.skip_bad:
                    raise
                _warn_once(str(e.path), f"skipping unreadable {e}")
        raise DataError(self.index_path, f"{_MAX_REDRAWS} draws in a row hit unreadable videos")

    def sample(self, rng, tc, k: int, strategy: str, size: int, heldout: bool = False):
        """One sample -> (frames uint8 (n + Ft, S, S, 3), c2w (n + Ft, 3, 4) float32, n, revisit, prompt)."""
        from camworld.data import segment_context

        def draw(rng):
            v = self._pick(rng, heldout)
            idx = self._window(rng, v, tc.trajectory_frames, reverse=True)
            E = v.c2w[idx]
            L, Ft = len(idx), tc.target_frames
            rv = revisit_frames(E, self.data.revisit_m, self.data.revisit_deg)
            starts = np.flatnonzero(rv[1:L - Ft + 1]) + 1
            if len(starts) and rng.random() < tc.revisit_prob:
                s = int(rng.choice(starts))
            else:
                s = int(rng.integers(1, L - Ft + 1))

            def pick(mem, times, tgt, k):
                return retrieve_context(strategy, E[mem], times, E[tgt], k, rng, v.info.planar)

            tgt, ctx = segment_context(L, s, rng, tc, k, pick)
            need = np.concatenate([ctx, tgt])
            rgb = self._read(v, idx[need], size)
            return rgb, E[need, :3].astype(np.float32), len(ctx), bool(rv[s]), _caption(v, int(idx[s]))

        return self._retry(draw, rng)

    def batch(self, rng, tc, frame_size: int, heldout: bool = False):
        """``camworld.data.sample_batch`` over the recorded videos: a ``camworld.data.Batch``."""
        from camworld.data import TRAIN_STRATEGIES, Batch

        B, Ft = tc.batch_size, tc.target_frames
        Fc = int(rng.integers(min(2, tc.context_frames), tc.context_frames + 1))
        names, probs = zip(*TRAIN_STRATEGIES)
        batch = Batch.empty(B, Fc, Ft, frame_size)
        for b in range(B):
            strategy = tc.retrieval if heldout else str(rng.choice(names, p=probs))
            rgb, ext, n, batch.revisit[b], prompt = self.sample(rng, tc, Fc, strategy, frame_size, heldout)
            batch.put(b, rgb, ext, n)
            batch.prompts.append(prompt)
        return batch

    def frames(self, rng, n: int, frame_size: int, heldout: bool = False, per_video: int = 8,
               window: int = 120) -> np.ndarray:
        """``camworld.data.vae_batch`` over the recorded videos: uint8 (n, S, S, 3), ``per_video`` random
        frames from a random window of each of a few videos."""
        def draw(rng):
            v = self._pick(rng, heldout)
            idx = self._window(rng, v, window, reverse=False)
            return self._read(v, rng.choice(idx, size=min(per_video, len(idx)), replace=False), frame_size)

        out = []
        while sum(len(o) for o in out) < n:
            out.append(self._retry(draw, rng))
        return np.concatenate(out)[:n]


@functools.lru_cache(maxsize=16)
def _shard(source: RecordedSource, heldout: bool):
    """-> (videos, cumulative model-frame counts): a video is drawn with chance proportional to its length."""
    index = _load_index(source.index_path)
    if heldout:
        videos = index.split("heldout") or index.split("train")
    else:
        videos = index.split("train")[source.rank::source.world]
    return videos, np.cumsum([(v.frames - 1) // source.stride(v) + 1 for v in videos])


# ---------------------------------------------------------------- run setup


def prepare(data: DataConfig, out: Path, resume: bool, cfg, rank: int = 0, world: int = 1, log=print,
            min_frames: int | None = None, threads: int = 1) -> RecordedSource:
    """Validate the data set once per run and fix it in ``out/data_index.json`` (rank 0 writes it, the other
    ranks wait for it); a resumed run checks that the data still is what the run started on. Logs what it
    found: videos, skipped ones with their reasons, planar or 6-DoF cameras, field-of-view mismatches.
    Videos with fewer than ``min_frames`` model frames are left out (default: a DiT sample's target segment
    and a frame before it; the VAE stage needs 1). ``threads`` videos are checked at once."""
    import torch.distributed as dist

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / INDEX_FILE
    tc = cfg.train
    if rank == 0:
        try:
            index = open_dataset(data.root, skip_bad=data.skip_bad, progress=True, threads=threads)
        except DataError as e:
            raise SystemExit(f"camworld train --data: {e}") from e
        index = _usable(index, data, tc, log, tc.target_frames + 2 if min_frames is None else min_frames)
        if resume and path.exists():
            old = DatasetIndex.load(path)
            if [(v.path, v.frames) for v in old.videos] != [(v.path, v.frames) for v in index.videos]:
                raise SystemExit(f"--resume: the videos in {data.root} differ from those this run started on "
                                 f"({path}); resume on the same data, or start a new run")
        index.save(path)
        _report(index, data, cfg, log)
        mb = sum(v.frames for v in index.videos) * cfg.frame_size ** 2 * 3 / 2**20
        log(f"data: {mb:.0f} MB at {cfg.frame_size}x{cfg.frame_size}: " + (
            f"each process decodes each video once and keeps it (--data-cache-mb {data.cache_mb})" if mb <= data.cache_mb
            else f"windows are decoded per sample (over --data-cache-mb {data.cache_mb})"))
    if world > 1 and dist.is_initialized():
        dist.barrier()
    index = DatasetIndex.load(path)
    n_train = len(index.split("train"))
    if n_train < world:
        raise SystemExit(f"camworld train --data: {n_train} training videos cannot be shared by {world} ranks "
                         "(each rank samples its own videos): use fewer ranks or more videos")
    mb = sum(v.frames for v in index.videos) * cfg.frame_size ** 2 * 3 / 2**20
    return RecordedSource(str(path), data, float(cfg.hfov_deg), int(tc.frame_stride), rank, world,
                          cache=mb <= data.cache_mb)


def _usable(index: DatasetIndex, data: DataConfig, tc, log, min_frames: int) -> DatasetIndex:
    """Leave out videos with fewer than ``min_frames`` model frames, saying so."""
    src = RecordedSource("", data, 0.0, int(tc.frame_stride))
    keep, short = [], []
    for v in index.videos:
        (keep if (v.frames - 1) // src.stride(v) + 1 >= min_frames else short).append(v)
    if short:
        log(f"data: {len(short)} videos have fewer than {min_frames} model frames and are left out "
            f"(first: {short[0].path})")
    if not [v for v in keep if v.split == "train"]:
        raise SystemExit(f"camworld train --data: no training video in {data.root} is long enough for one sample")
    return DatasetIndex(index.root, keep, index.skipped)


def _report(index: DatasetIndex, data: DataConfig, cfg, log):
    src = RecordedSource("", data, 0.0, int(cfg.train.frame_stride))
    train, held = index.split("train"), index.split("heldout")
    strides = sorted({src.stride(v) for v in index.videos})
    log(f"data: {len(train)} training videos, {sum(v.frames for v in train)} frames, stride {strides} "
        f"(model {SIM_FPS / cfg.train.frame_stride:g} fps); held-out numbers on "
        f"{f'{len(held)} held-out videos' if held else 'the training videos (no video has split heldout)'}")
    if index.skipped:
        log(f"data: skipped {len(index.skipped)} bad videos (--skip-bad; reasons in data_index.json), "
            f"first: {index.skipped[0][1]}")
    if index.planar:
        log("data: cameras are planar (level, constant height): retrieval on (x, y, yaw) is exact")
    else:
        n = sum(not v.planar for v in index.videos)
        log(f"data: {n} of {len(index.videos)} videos have 6-DoF cameras (not level, or not at a constant height): "
            "their context is retrieved by the 6-DoF frustum rule, the planar ones' by the planar FOV rule")
    covered = []
    for v in index.videos[:64]:
        K0 = load_cameras(Path(index.root) / v.path)["intrinsics"][0]
        covered.append(fov_crop(K0, v.width, v.height, cfg.hfov_deg)[3])
    worst = max(covered, key=lambda c: abs(c - cfg.hfov_deg))
    if abs(worst - cfg.hfov_deg) > 1.0:
        log(f"data: WARNING frames cover {worst:.1f} degrees horizontally after cropping, the model assumes "
            f"{cfg.hfov_deg:g}: its camera rays will be off (record wider, or set hfov_deg to match)")
