"""The on-disk format of long posed videos, ``camworld.posed-videos`` version 2, and its writers.

Layout (docs/DATA.md is the full specification)::

    DIR/
      dataset.json            {"schema": "camworld.posed-videos", "version": 2,
                               "videos": [{"path": "videos/000000", "split": "train"}, ...], "writer": {...}}
      videos/000000/
        video.mp4             the frames: an mp4 (frame i = the i-th decoded frame) ...
        frames/000000.png     ... or a folder of PNG/JPG images, in file-name order (exactly one of the two)
        cameras.npz           timestamps (F,) s, intrinsics (F, 3, 3) pixels, c2w (F, 4, 4) camera-to-world,
                              OpenCV camera axes (x right, y down, z forward), metres   (or cameras.json)
        depth.npz             optional: depth (F, H, W) float32 metres along the optical axis
        captions.json         optional: {"scene": str, "segments": [{"start", "end", "text"}]} (end exclusive)
        meta.json             optional: anything (the sim writes its scene seed and style)

A video belongs to the data set when ``dataset.json`` lists it, so a writer that writes every video first and
``dataset.json`` last never leaves a half data set that looks complete. Readers ignore keys and files they do
not know; a writer may add them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from camworld.files import atomic_write, write_text

SCHEMA = "camworld.posed-videos"
VERSION = 2                      # version 1: the sim's old export (format.json, cameras.npz with 3x4 extrinsics)
DATASET_FILE = "dataset.json"
VIDEO_FILE = "video.mp4"
FRAMES_DIR = "frames"
CAMERAS_NPZ, CAMERAS_JSON = "cameras.npz", "cameras.json"
DEPTH_FILE = "depth.npz"
CAPTIONS_FILE = "captions.json"
META_FILE = "meta.json"
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "heldout")    # heldout videos are only used for the held-out numbers of a training run


def write_npz(path: Path, **arrays) -> Path:
    def w(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return atomic_write(path, w)


def write_json(path: Path, doc) -> Path:
    return write_text(path, json.dumps(doc, indent=1))


def write_mp4(path: Path, frames: np.ndarray, fps: float):
    """uint8 (F, H, W, 3) -> H.264 (CRF 17, yuv420p) via imageio-ffmpeg, H and W even. moviepy 2's
    ``ImageSequenceClip.write_videofile`` drops the last frame for some lengths (160 frames at 30 fps come
    out as 159), which would break the one-camera-per-frame rule, so frames go straight to ffmpeg."""
    import imageio_ffmpeg

    F, H, W, _ = frames.shape
    if H % 2 or W % 2:
        raise ValueError(f"H.264 needs even frame sizes, got {W}x{H}; write image frames instead")

    def w(tmp):
        writer = imageio_ffmpeg.write_frames(str(tmp), (W, H), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=1, quality=None, output_params=["-crf", "17"],
                                             ffmpeg_log_level="error")
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()
    atomic_write(path, w)


def write_images(vdir: Path, frames: np.ndarray, ext: str = ".png") -> list:
    """uint8 (F, H, W, 3) -> ``frames/000000.png`` ... (lossless PNG by default)."""
    from PIL import Image

    d = Path(vdir) / FRAMES_DIR
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(frames):
        out.append(atomic_write(d / f"{i:06d}{ext}", lambda tmp, f=f: Image.fromarray(f).save(tmp)))
    return out


def write_cameras(vdir: Path, timestamps, intrinsics, c2w, as_json: bool = False, **extra) -> Path:
    """Per-frame cameras: timestamps (F,) seconds, intrinsics (F, 3, 3) pixels, c2w (F, 4, 4) (a (F, 3, 4)
    [R|t] gets its bottom row). ``extra`` arrays are stored too (readers ignore them)."""
    ts = np.asarray(timestamps, np.float64)
    K = np.asarray(intrinsics, np.float64)
    E = np.asarray(c2w, np.float64)
    if E.shape[-2:] == (3, 4):
        E = np.concatenate([E, np.broadcast_to([0.0, 0.0, 0.0, 1.0], E.shape[:-2] + (1, 4))], -2)
    if as_json:
        doc = dict(timestamps=ts.tolist(), intrinsics=K.tolist(), c2w=E.tolist(),
                   **{k: np.asarray(v).tolist() for k, v in extra.items()})
        return write_json(Path(vdir) / CAMERAS_JSON, doc)
    return write_npz(Path(vdir) / CAMERAS_NPZ, timestamps=ts, intrinsics=K, c2w=E, **extra)


def write_video(vdir, frames, timestamps, intrinsics, c2w, *, depth=None, captions=None, meta=None,
                image_ext: str | None = None, cameras_json: bool = False, **camera_extra) -> Path:
    """Write one complete video folder. ``frames``: uint8 (F, H, W, 3), written as ``video.mp4`` at the
    timestamps' frame rate, or as image files when ``image_ext`` is ".png"/".jpg". ``captions``: the
    captions.json dict. Returns the folder; list it in ``dataset.json`` (``write_dataset``) to publish it."""
    vdir = Path(vdir)
    vdir.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames)
    if image_ext:
        write_images(vdir, frames, image_ext)
    else:
        ts = np.asarray(timestamps, np.float64)
        fps = 1.0 / float(np.median(np.diff(ts))) if len(ts) > 1 else 30.0
        write_mp4(vdir / VIDEO_FILE, frames, round(fps, 6))
    write_cameras(vdir, timestamps, intrinsics, c2w, as_json=cameras_json, **camera_extra)
    if depth is not None:
        write_npz(vdir / DEPTH_FILE, depth=np.asarray(depth, np.float32))
    if captions is not None:
        write_json(vdir / CAPTIONS_FILE, captions)
    if meta is not None:
        write_json(vdir / META_FILE, meta)
    return vdir


def write_dataset(root, videos: list, writer: dict | None = None) -> Path:
    """``dataset.json``: ``videos`` are folder paths relative to ``root`` or dicts with "path" (and
    optionally "split": "train" | "heldout"). Write it last: it is what publishes the videos."""
    entries = [v if isinstance(v, dict) else {"path": str(v)} for v in videos]
    for e in entries:
        e["path"] = Path(e["path"]).as_posix()
        if e.get("split", "train") not in SPLITS:
            raise ValueError(f"video {e['path']}: split must be one of {SPLITS}, got {e['split']!r}")
    return write_json(Path(root) / DATASET_FILE, dict(schema=SCHEMA, version=VERSION, videos=entries,
                                                     writer=writer or {}))
