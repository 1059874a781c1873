"""Importers from two common layouts of posed frames into the ``camworld.posed-videos`` format.

* ``realestate10k``: one text file per clip, as RealEstate10K ships them. The first line may be the
  clip's URL; then one line per frame: ``timestamp_us fx fy cx cy k1 k2`` followed by the 12 numbers of a
  3x4 world-to-camera ``[R|t]`` (row-major, OpenCV axes), intrinsics normalised by the image width (fx, cx)
  and height (fy, cy). The frames are image files in a folder beside it with the clip's name
  (``CLIP.txt`` + ``CLIP/``), named by their timestamp (``52553000.png``) or, when the counts agree, in
  file-name order. Poses come out camera-to-world, intrinsics in pixels; translations are multiplied by
  ``scale`` (RealEstate10K's are up to an unknown scale; the model thinks in metres).
* ``json-images``: a folder of images and one JSON of 4x4 camera-to-world matrices, either the NeRF /
  nerfstudio ``transforms.json`` layout (``{"camera_angle_x" | "fl_x", "fl_y", "cx", "cy", "frames":
  [{"file_path", "transform_matrix"}]}``) or a plain ``{"image.png": 4x4, ...}`` mapping (file-name order).
  ``axes`` says which camera axes the matrices use: "opengl" (x right, y up, z backward: NeRF, Blender,
  nerfstudio) or "opencv" (x right, y down, z forward).

The frames are copied (or hard-linked with ``link``) as they are: no re-encoding. Every problem is a
``DataError`` naming the source file and line; with ``skip_bad`` a bad clip is left out and counted.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from camworld.recorded import schema as S
from camworld.recorded.frames import DataError, image_size
from camworld.recorded.reader import ROT_TOL

RE10K_COLUMNS = 19
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])   # c2w_cv = c2w_gl @ this (flip the camera's y and z)


def _copy(src: Path, dst: Path, link: bool):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:     # another file system: fall back to a copy
            pass
    shutil.copyfile(src, dst)


def _images(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in S.IMAGE_EXTS) if folder.is_dir() else []


def _write(out: Path, name: str, files: list, timestamps, K, c2w, link: bool, meta: dict) -> Path:
    """Frames (copied in order) + cameras -> out/videos/NAME; the cameras file goes last."""
    vdir = out / "videos" / name
    if vdir.exists():
        shutil.rmtree(vdir)     # a half-written video of an interrupted import
    for i, f in enumerate(files):
        _copy(f, vdir / S.FRAMES_DIR / f"{i:06d}{f.suffix.lower()}", link)
    S.write_json(vdir / S.META_FILE, meta)
    S.write_cameras(vdir, timestamps, K, c2w)
    return vdir


def _check_rigid(path, R, where):
    err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max((-1, -2))
    det = np.linalg.det(R)
    bad = np.flatnonzero((err > ROT_TOL) | (det <= 0))
    if len(bad):
        raise DataError(path, f"{where(int(bad[0]))}: the rotation is not rigid (|R^T R - I| = {err[bad[0]]:.3g}, "
                              f"det {det[bad[0]]:.3g})")


# ---------------------------------------------------------------- RealEstate10K


def parse_realestate10k(path) -> tuple:
    """A RealEstate10K clip file -> (timestamps_us int64 (F,), normalised (F, 4) fx fy cx cy,
    world-to-camera (F, 3, 4)). Raises DataError naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read it: {e}") from e
    rows, first = [], True
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if first and not _is_number(parts[0]):   # the clip's URL
            first = False
            continue
        first = False
        if len(parts) != RE10K_COLUMNS:
            raise DataError(path, f"line {n} has {len(parts)} numbers, expected {RE10K_COLUMNS} (timestamp, fx fy cx "
                                  "cy, k1 k2, 3x4 world-to-camera row by row): truncated or not a RealEstate10K file?")
        try:
            vals = [float(p) for p in parts]
        except ValueError as e:
            raise DataError(path, f"line {n}: {e}") from e
        if not np.isfinite(vals).all():
            raise DataError(path, f"line {n} has NaN or inf")
        rows.append(vals)
    if not rows:
        raise DataError(path, "holds no pose lines")
    a = np.asarray(rows)
    w2c = a[:, 7:].reshape(-1, 3, 4)
    data_lines = [n for n, ln in enumerate(lines, 1) if ln.split() and _is_number(ln.split()[0])]
    _check_rigid(path, w2c[:, :, :3], lambda i: f"line {data_lines[i]}")
    return a[:, 0].astype(np.int64), a[:, 1:5], w2c


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _match_frames(txt: Path, folder: Path, stamps) -> list:
    files = _images(folder)
    if not files:
        raise DataError(folder, f"no frames for {txt.name} (expected image files in {folder.name}/ beside it)")
    by_stamp = {int(f.stem): f for f in files if f.stem.isdigit()}
    if len(by_stamp) == len(files):
        missing = [int(t) for t in stamps if int(t) not in by_stamp]
        if not missing:
            return [by_stamp[int(t)] for t in stamps]
        if len(files) != len(stamps):
            raise DataError(folder, f"no frame for {len(missing)} of the {len(stamps)} timestamps in {txt.name} "
                                    f"(first: {missing[:3]}); frames are named by timestamp in microseconds")
    if len(files) != len(stamps):
        raise DataError(folder, f"has {len(files)} frames but {txt.name} has {len(stamps)} poses")
    return files


def import_realestate10k(src, out, *, scale: float = 1.0, frames_root=None, link: bool = False,
                         skip_bad: bool = False, progress: bool = True) -> dict:
    """``src``: one clip file or a folder of them -> a data set in ``out``. -> {"videos": [...], "skipped":
    [(clip, reason)]}."""
    src, out = Path(src), Path(out)
    clips = sorted(src.glob("*.txt")) if src.is_dir() else [src]
    if not clips or not all(c.is_file() for c in clips):
        raise DataError(src, "no RealEstate10K clip files (*.txt)")
    _check_out(out)
    if progress:
        from tqdm import tqdm
        clips = tqdm(clips, desc="clips", unit="clip")
    videos, skipped = [], []
    for txt in clips:
        try:
            stamps, norm, w2c = parse_realestate10k(txt)
            folder = (Path(frames_root) if frames_root else txt.parent) / txt.stem
            files = _match_frames(txt, folder, stamps)
            W, H = image_size(files[0])
            K = np.zeros((len(stamps), 3, 3))
            K[:, 0, 0], K[:, 1, 1] = norm[:, 0] * W, norm[:, 1] * H
            K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = norm[:, 2] * W, norm[:, 3] * H, 1.0
            R, t = w2c[:, :, :3], w2c[:, :, 3]
            c2w = np.tile(np.eye(4), (len(stamps), 1, 1))
            c2w[:, :3, :3] = np.swapaxes(R, 1, 2)
            c2w[:, :3, 3] = -np.einsum("fji,fj->fi", R, t) * scale
            _write(out, txt.stem, files, stamps / 1e6, K, c2w, link,
                   {"source": "realestate10k", "clip": txt.name, "scale": scale})
            videos.append({"path": f"videos/{txt.stem}"})
        except DataError as e:
            if not skip_bad:
                raise
            skipped.append((txt.name, str(e)))
    return _finish(out, videos, skipped, {"tool": "camworld dataset import realestate10k", "source": str(src)})


# ---------------------------------------------------------------- folder of images + one JSON


def _resolve_image(folder: Path, name: str, json_path: Path) -> Path:
    p = (folder / name).resolve()
    if p.is_file():
        return p
    for ext in S.IMAGE_EXTS:      # NeRF-synthetic names its frames without the extension
        if p.with_name(p.name + ext).is_file():
            return p.with_name(p.name + ext)
    raise DataError(json_path, f"names the image {name!r}, which is not in {folder}")


def _intrinsics(d: dict, W: int, H: int, hfov_deg, json_path: Path):
    """3x3 K in pixels from a transforms.json-style dict (per-frame or top level), else None."""
    for key in ("K", "intrinsics"):
        if key in d:
            K = np.asarray(d[key], np.float64)
            if K.shape != (3, 3):
                raise DataError(json_path, f"{key} must be a 3x3 matrix in pixels, got shape {K.shape}")
            return K
    if "fl_x" in d or "camera_angle_x" in d:
        fx = float(d["fl_x"]) if "fl_x" in d else 0.5 * W / np.tan(0.5 * float(d["camera_angle_x"]))
        fy = float(d.get("fl_y", fx))
        if "fl_y" not in d and "camera_angle_y" in d:
            fy = 0.5 * H / np.tan(0.5 * float(d["camera_angle_y"]))
        return np.array([[fx, 0, float(d.get("cx", W / 2))], [0, fy, float(d.get("cy", H / 2))], [0, 0, 1.0]])
    if hfov_deg is not None:
        fx = 0.5 * W / np.tan(np.deg2rad(hfov_deg) / 2)
        return np.array([[fx, 0, W / 2], [0, fx, H / 2], [0, 0, 1.0]])
    return None


def import_json_images(src, out, *, axes: str, poses: str | None = None, hfov_deg: float | None = None,
                       fps: float = 30.0, link: bool = False) -> dict:
    """A folder of images + one JSON of 4x4 camera-to-world matrices -> a one-video data set in ``out``."""
    if axes not in ("opengl", "opencv"):
        raise ValueError(f"axes must be 'opengl' (NeRF, Blender, nerfstudio) or 'opencv', got {axes!r}")
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(src, "not a folder of images")
    if poses:
        json_path = src / poses if not Path(poses).is_absolute() else Path(poses)
    else:
        found = sorted(src.glob("*.json"))
        if len(found) != 1:
            raise DataError(src, f"holds {len(found)} JSON files; name the pose file with --poses")
        json_path = found[0]
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(json_path, f"not valid JSON (truncated?): {e}") from e
    if isinstance(doc, dict) and "frames" in doc:
        top, frames = doc, doc["frames"]
    elif isinstance(doc, list):
        top, frames = {}, doc
    elif isinstance(doc, dict):   # {"image.png": 4x4, ...}
        top, frames = {}, [{"file_path": k, "transform_matrix": v} for k, v in sorted(doc.items())]
    else:
        raise DataError(json_path, "must be {'frames': [...]}, a list of frames or {image: 4x4}")
    if not frames:
        raise DataError(json_path, "lists no frames")
    files, mats, stamps, Ks = [], [], [], []
    for i, fr in enumerate(frames):
        name = next((fr[k] for k in ("file_path", "file", "image", "path") if isinstance(fr, dict) and k in fr), None)
        mat = next((fr[k] for k in ("transform_matrix", "c2w") if isinstance(fr, dict) and k in fr), None)
        if name is None or mat is None:
            raise DataError(json_path, f"frame {i} needs an image name (file_path) and a 4x4 transform_matrix")
        try:
            M = np.asarray(mat, np.float64)
        except ValueError as e:
            raise DataError(json_path, f"frame {i} ({name}): transform_matrix is malformed: {e}") from e
        if M.shape != (4, 4) or not np.isfinite(M).all():
            raise DataError(json_path, f"frame {i} ({name}): transform_matrix must be a finite 4x4 matrix, "
                                       f"got shape {M.shape}")
        files.append(_resolve_image(src, name, json_path))
        mats.append(M)
        stamps.append(float(fr.get("timestamp", fr.get("time", i / fps))))
    W, H = image_size(files[0])
    for f in files:
        if image_size(f) != (W, H):
            raise DataError(f, f"is {image_size(f)}, the first frame {files[0].name} is {(W, H)}")
    c2w = np.stack(mats)
    _check_rigid(json_path, c2w[:, :3, :3], lambda i: f"frame {i} ({files[i].name})")
    if axes == "opengl":
        c2w = c2w @ OPENGL_TO_OPENCV
    for i, fr in enumerate(frames):
        K = _intrinsics(fr, W, H, None, json_path)
        if K is None:
            K = _intrinsics(top, W, H, hfov_deg, json_path)
        if K is None:
            raise DataError(json_path, "has no intrinsics (camera_angle_x, fl_x/fl_y/cx/cy or K): pass --hfov DEG")
        Ks.append(K)
    _check_out(out)
    name = src.name or "video"
    _write(out, name, files, np.asarray(stamps), np.stack(Ks), c2w, link,
           {"source": "json-images", "poses": json_path.name, "axes": axes})
    return _finish(out, [{"path": f"videos/{name}"}], [], {"tool": "camworld dataset import json-images",
                                                           "source": str(src)})


# ---------------------------------------------------------------- both


def _check_out(out: Path):
    if (out / S.DATASET_FILE).exists():
        raise DataError(out, f"already holds a data set ({S.DATASET_FILE}); import into a new folder")
    out.mkdir(parents=True, exist_ok=True)


def _finish(out: Path, videos: list, skipped: list, writer: dict) -> dict:
    if not videos:
        raise DataError(out, f"nothing imported: all {len(skipped)} clips were bad (first: {skipped[0][1]})")
    S.write_dataset(out, videos, dict(writer, skipped=[list(s) for s in skipped]))
    return {"videos": videos, "skipped": skipped}
