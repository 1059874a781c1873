"""Reading and validating a ``camworld.posed-videos`` data set (format: ``schema.py``, docs/DATA.md).

``open_dataset(DIR)`` checks every listed video without decoding it (pose file: shapes, NaN/inf, rigid
rotations, increasing timestamps; frames: count and size against the poses; depth and captions when present)
and returns a ``DatasetIndex``: the small, JSON-serialisable list of good videos that training samples from.
Every problem is a ``DataError`` naming the file. With ``skip_bad`` a bad video is left out instead, and the
index counts it with its reason. ``full=True`` also decodes every frame, which finds corruption inside a
stream that the fast check cannot see.

Letters: F frames, H/W frame height/width.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from camworld.recorded import schema as S
from camworld.recorded.frames import DataError, decode_mp4, image_size, probe_mp4, seekable, verify_image

ROT_TOL = 1e-3          # max |R^T R - I| of a rigid rotation (poses stored as text keep ~7 digits)
LEVEL_DEG = 1.0         # planar cameras: the camera's down axis within this of world -z ...
HEIGHT_M = 0.02         # ... and the camera height within this range over the whole video


@dataclass(frozen=True)
class VideoInfo:
    """One good video of an index (everything a sampler needs before it opens the video)."""

    path: str            # folder, relative to the data set's root
    frames: int          # F
    source: str          # "mp4" | "images"
    width: int
    height: int
    fps: float           # from the timestamps (median frame interval)
    split: str           # "train" | "heldout"
    planar: bool         # level cameras at a constant height: retrieval on (x, y, yaw) is exact
    cameras: str         # "cameras.npz" | "cameras.json"
    seek_fps: float = 0.0  # mp4 that reads can seek in (frame i at i / seek_fps s, checked); 0: decode from the start


@dataclass
class DatasetIndex:
    root: str
    videos: list                                   # [VideoInfo]
    skipped: list = field(default_factory=list)    # [(path, reason)] videos left out by skip_bad

    @property
    def planar(self) -> bool:
        return all(v.planar for v in self.videos)

    def split(self, name: str) -> list:
        return [v for v in self.videos if v.split == name]

    def to_dict(self) -> dict:
        return {"root": self.root, "videos": [asdict(v) for v in self.videos], "skipped": [list(s) for s in self.skipped]}

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetIndex":
        return cls(d["root"], [VideoInfo(**v) for v in d["videos"]], [tuple(s) for s in d.get("skipped", [])])

    def save(self, path) -> Path:
        return S.write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path) -> "DatasetIndex":
        return cls.from_dict(json.loads(Path(path).read_text()))


# ---------------------------------------------------------------- dataset.json


def load_dataset_json(root) -> dict:
    root = Path(root)
    path = root / S.DATASET_FILE
    if not path.exists():
        if (root / "format.json").exists():
            raise DataError(path, "missing: this is a version-1 camworld export (format.json); export it again "
                                  "with this camworld (`camworld dataset ...`) to get the version-2 format")
        if not root.is_dir():
            raise DataError(root, "no such data set folder")
        raise DataError(path, f"missing: not a {S.SCHEMA} data set (docs/DATA.md says how to write one), or an "
                              "export that was interrupted before its end (rerun it)")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON (truncated?): {e}") from e
    if not isinstance(doc, dict) or doc.get("schema") != S.SCHEMA:
        raise DataError(path, f"schema must be {S.SCHEMA!r}, got {doc.get('schema') if isinstance(doc, dict) else doc!r}")
    version = doc.get("version")
    if not isinstance(version, int) or version < 2:
        raise DataError(path, f"version {version!r} is not readable: this reader reads version {S.VERSION}")
    if version > S.VERSION:
        raise DataError(path, f"version {version} was written by a newer camworld; this one reads up to "
                              f"{S.VERSION}: upgrade camworld")
    videos = doc.get("videos")
    if not isinstance(videos, list) or not videos:
        raise DataError(path, "lists no videos (\"videos\": [{\"path\": \"videos/000000\"}, ...]); an interrupted "
                              "export writes it last, so rerun the export")
    seen = set()
    for i, v in enumerate(videos):
        if not isinstance(v, dict) or not isinstance(v.get("path"), str):
            raise DataError(path, f"videos[{i}] must be {{\"path\": str, \"split\"?: str}}, got {v!r}")
        if v.get("split", "train") not in S.SPLITS:
            raise DataError(path, f"videos[{i}] split must be one of {S.SPLITS}, got {v.get('split')!r}")
        if v["path"] in seen:
            raise DataError(path, f"video {v['path']} is listed twice")
        seen.add(v["path"])
    return doc


# ---------------------------------------------------------------- cameras


def _load_camera_arrays(path: Path) -> dict:
    if not path.exists():
        raise DataError(path, "missing")
    try:
        if path.suffix == ".json":
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise DataError(path, "must be a JSON object with timestamps, intrinsics, c2w")
            return {k: np.asarray(doc[k], np.float64) for k in ("timestamps", "intrinsics", "c2w") if k in doc}
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k], np.float64) for k in ("timestamps", "intrinsics", "c2w") if k in z.files}
    except DataError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON (truncated?): {e}") from e
    except (ValueError, TypeError) as e:   # ragged JSON lists, pickled npz members
        raise DataError(path, f"arrays are malformed: {e}") from e
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(path, f"not a readable npz (corrupt or truncated?): {e}") from e


def check_cameras(path, cams: dict) -> dict:
    """Validate camera arrays (see ``load_cameras``); -> the same dict. Raises DataError naming ``path``."""
    missing = [k for k in ("timestamps", "intrinsics", "c2w") if k not in cams]
    if missing:
        raise DataError(path, f"missing {missing}; a pose file holds timestamps (F,), intrinsics (F, 3, 3) and "
                              "c2w (F, 4, 4)")
    ts, K, E = cams["timestamps"], cams["intrinsics"], cams["c2w"]
    F = len(ts)
    for name, a, shape in (("timestamps", ts, (F,)), ("intrinsics", K, (F, 3, 3)), ("c2w", E, (F, 4, 4))):
        if a.shape != shape:
            raise DataError(path, f"{name} has shape {a.shape}, expected {shape} (F = {F} from the timestamps; "
                                  "a truncated or inconsistent pose file?)")
        bad = ~np.isfinite(a.reshape(F, -1)).all(1) if F else np.zeros(0, bool)
        if bad.any():
            raise DataError(path, f"{name} has NaN or inf at frames {np.flatnonzero(bad)[:5].tolist()}")
    if F == 0:
        raise DataError(path, "holds no frames")
    if F > 1 and not (np.diff(ts) > 0).all():
        i = int(np.flatnonzero(np.diff(ts) <= 0)[0]) + 1
        raise DataError(path, f"timestamps must increase strictly; frame {i} is at {ts[i]} s after {ts[i - 1]} s")
    if not (np.abs(K[:, 2] - [0, 0, 1]).max() < 1e-6 and np.abs(K[:, 1, 0]).max() < 1e-6
            and (K[:, 0, 0] > 0).all() and (K[:, 1, 1] > 0).all()):
        raise DataError(path, f"intrinsics must be pinhole K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]] in pixels "
                              f"with fx, fy > 0; frame 0 has {K[0].tolist()}")
    if np.abs(E[:, 3] - [0, 0, 0, 1]).max() > 1e-6:
        i = int(np.flatnonzero(np.abs(E[:, 3] - [0, 0, 0, 1]).max(1) > 1e-6)[0])
        raise DataError(path, f"c2w of frame {i} has bottom row {E[i, 3].tolist()}, expected [0, 0, 0, 1]")
    R = E[:, :3, :3]
    err = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)).max((1, 2))
    det = np.linalg.det(R)
    if (err > ROT_TOL).any() or (det <= 0).any():
        i = int(np.flatnonzero((err > ROT_TOL) | (det <= 0))[0])
        what = "a reflection (det < 0)" if det[i] <= 0 else f"not a rotation: |R^T R - I| = {err[i]:.3g}"
        raise DataError(path, f"c2w of frame {i} is not a rigid transform ({what}); camera-to-world must be "
                              "[R | t] with R orthonormal, det +1 (scale or shear belongs elsewhere)")
    return cams


def camera_file(vdir: Path) -> Path:
    found = [vdir / n for n in (S.CAMERAS_NPZ, S.CAMERAS_JSON) if (vdir / n).exists()]
    if not found:
        raise DataError(vdir, f"no pose file ({S.CAMERAS_NPZ} or {S.CAMERAS_JSON})")
    if len(found) > 1:
        raise DataError(vdir, f"has both {S.CAMERAS_NPZ} and {S.CAMERAS_JSON}; keep one")
    return found[0]


def load_cameras(vdir) -> dict:
    """A video's cameras: timestamps (F,) s, intrinsics (F, 3, 3) pixels, c2w (F, 4, 4), validated."""
    path = camera_file(Path(vdir))
    return check_cameras(path, _load_camera_arrays(path))


def is_planar(c2w) -> bool:
    """Level cameras (down axis within LEVEL_DEG of world -z) at a constant height (range <= HEIGHT_M):
    then (x, y, yaw) describes each camera exactly, as in the sim."""
    E = np.asarray(c2w, np.float64)
    level = (E[:, 2, 1] <= -np.cos(np.deg2rad(LEVEL_DEG))).all()
    return bool(level and np.ptp(E[:, 2, 3]) <= HEIGHT_M)


# ---------------------------------------------------------------- frames, depth, captions


def image_files(vdir) -> list:
    d = Path(vdir) / S.FRAMES_DIR
    return sorted(p for p in d.iterdir() if p.suffix.lower() in S.IMAGE_EXTS) if d.is_dir() else []


def frame_source(vdir: Path) -> str:
    has_mp4, has_dir = (vdir / S.VIDEO_FILE).exists(), (vdir / S.FRAMES_DIR).is_dir()
    if has_mp4 and has_dir:
        raise DataError(vdir, f"has both {S.VIDEO_FILE} and {S.FRAMES_DIR}/; keep one")
    if not (has_mp4 or has_dir):
        raise DataError(vdir, f"no frames ({S.VIDEO_FILE} or {S.FRAMES_DIR}/*.png|jpg)")
    return "mp4" if has_mp4 else "images"


def _npz_shape(path: Path, key: str) -> tuple:
    try:
        with zipfile.ZipFile(path) as z, z.open(key + ".npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            return shape, dtype
    except KeyError as e:
        raise DataError(path, f"has no array {key!r}") from e
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as e:
        raise DataError(path, f"not a readable npz (corrupt or truncated?): {e}") from e


def _check_captions(path: Path, F: int):
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON (truncated?): {e}") from e
    segs = doc.get("segments", []) if isinstance(doc, dict) else None
    if segs is None or not isinstance(segs, list):
        raise DataError(path, "must be {\"scene\"?: str, \"segments\"?: [{\"start\", \"end\", \"text\"}]}")
    for s in segs:
        if not (isinstance(s, dict) and isinstance(s.get("text"), str) and isinstance(s.get("start"), int)
                and isinstance(s.get("end"), int) and 0 <= s["start"] < s["end"] <= F):
            raise DataError(path, f"segment {s!r} must have int start < end within 0..{F} frames and a text")


def check_video(root, entry: dict, full: bool = False) -> VideoInfo:
    """Validate one listed video (``entry`` from dataset.json); -> its VideoInfo. Raises DataError."""
    root = Path(root)
    vdir = root / entry["path"]
    if not vdir.is_dir():
        raise DataError(vdir, "listed in dataset.json but missing")
    cam_path = camera_file(vdir)
    cams = check_cameras(cam_path, _load_camera_arrays(cam_path))
    F = len(cams["timestamps"])
    source = frame_source(vdir)
    seek_fps = 0.0
    if source == "mp4":
        info = probe_mp4(vdir / S.VIDEO_FILE)
        n, W, H = info["frames"], info["width"], info["height"]
        where = vdir / S.VIDEO_FILE
        if full and n == F:
            decode_mp4(where, [F - 1], crop=(0, 0, min(W, H)), size=8, width=W, height=H)
        if n == F:
            seek_fps = seekable(where, F, W, H, info["cfr_fps"])
    else:
        files = image_files(vdir)
        n, where = len(files), vdir / S.FRAMES_DIR
        if not files:
            raise DataError(where, "holds no .png/.jpg files")
        W, H = image_size(files[0])
        for f in (files if full else files[-1:]):
            if image_size(f) != (W, H):
                raise DataError(f, f"is {image_size(f)}, the first frame {files[0].name} is {(W, H)}")
            if full:
                verify_image(f)
    if n != F:
        raise DataError(where, f"has {n} frames but {cam_path.name} has {F} cameras; every frame needs one")
    K0 = cams["intrinsics"][0]
    if not (0 < K0[0, 2] < W and 0 < K0[1, 2] < H):
        raise DataError(cam_path, f"principal point ({K0[0, 2]:.1f}, {K0[1, 2]:.1f}) lies outside the {W}x{H} "
                                  "frame: intrinsics must be in pixels of these frames")
    if (vdir / S.DEPTH_FILE).exists():
        shape, dtype = _npz_shape(vdir / S.DEPTH_FILE, "depth")
        if tuple(shape) != (F, H, W) or dtype.kind != "f":
            raise DataError(vdir / S.DEPTH_FILE, f"depth is {dtype} {tuple(shape)}, expected float (F, H, W) = "
                                                 f"{(F, H, W)}")
    if (vdir / S.CAPTIONS_FILE).exists():
        _check_captions(vdir / S.CAPTIONS_FILE, F)
    ts = cams["timestamps"]
    fps = 1.0 / float(np.median(np.diff(ts))) if F > 1 else 0.0
    return VideoInfo(path=Path(entry["path"]).as_posix(), frames=F, source=source, width=int(W), height=int(H),
                     fps=round(fps, 6), split=entry.get("split", "train"), planar=is_planar(cams["c2w"]),
                     cameras=cam_path.name, seek_fps=seek_fps)


def open_dataset(root, skip_bad: bool = False, full: bool = False, progress: bool = True,
                 threads: int = 1) -> DatasetIndex:
    """Validate a data set -> DatasetIndex of its good videos. Raises DataError on the first bad video,
    or with ``skip_bad`` leaves it out and records (path, reason) in ``index.skipped``. ``threads`` > 1
    checks that many videos at once (the work is mostly ffmpeg processes and file reads); same result."""
    from concurrent.futures import ThreadPoolExecutor

    root = Path(root).resolve()
    entries = load_dataset_json(root)["videos"]

    def check(e):
        try:
            return check_video(root, e, full=full)
        except DataError as err:
            return err

    with ThreadPoolExecutor(max(1, int(threads))) as pool:
        results = pool.map(check, entries)
        if progress:
            from tqdm import tqdm
            results = tqdm(results, total=len(entries), desc=f"checking {root.name}", unit="video", leave=False)
        good, skipped = [], []
        for e, r in zip(entries, results):
            if not isinstance(r, DataError):
                good.append(r)
            elif not skip_bad:
                raise DataError(r.path, r.message + " (skip_bad / --skip-bad leaves bad videos out)") from r
            else:
                skipped.append((e["path"], str(r)))
    if not good:
        raise DataError(root / S.DATASET_FILE, f"no usable video: all {len(skipped)} listed were bad "
                                               f"(first: {skipped[0][1] if skipped else '-'})")
    return DatasetIndex(str(root), good, skipped)


def read_video(vdir) -> dict:
    """Everything of one video folder, validated: frames uint8 (F, H, W, 3) as stored, timestamps,
    intrinsics, c2w, and depth (F, H, W), captions, meta when present."""
    vdir = Path(vdir)
    info = check_video(vdir.parent, {"path": vdir.name})
    cams = load_cameras(vdir)
    if info.source == "mp4":
        frames = decode_mp4(vdir / S.VIDEO_FILE, np.arange(info.frames), width=info.width, height=info.height)
    else:
        from camworld.recorded.frames import read_images
        frames = read_images(image_files(vdir))
    out = dict(frames=frames, **cams)
    if (vdir / S.DEPTH_FILE).exists():
        with np.load(vdir / S.DEPTH_FILE) as z:
            out["depth"] = z["depth"]
    for key, name in (("captions", S.CAPTIONS_FILE), ("meta", S.META_FILE)):
        if (vdir / name).exists():
            out[key] = json.loads((vdir / name).read_text())
    return out
