"""Reading the frames of a posed video: mp4 through the ffmpeg that imageio-ffmpeg ships, image files
through Pillow; cropping to the model's field of view and resizing to its frame size on the way.

Frame i of an mp4 is its i-th decoded frame. A read decodes from the start up to the last frame asked for
(counting frames, so variable frame rates and odd start times cannot shift them), or, for a video that
``seekable`` has checked (constant frame rate, starting at 0, seeking lands on the counted frames), from the
first frame asked for. ffmpeg does the crop and the resize, so only model-sized frames cross the pipe. Image frames are read one file
each. Every failure is a ``DataError`` naming the file.

Letters: F frames, H/W frame height/width, S the model's frame size.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A recorded video or pose file that is missing, corrupt, truncated or inconsistent. ``path`` is the
    offending file (or folder)."""

    def __init__(self, path, message: str):
        self.path, self.message = Path(path), message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):   # a worker process's error reaches the training process intact
        return type(self), (self.path, self.message)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def probe_mp4(path) -> dict:
    """Frame count and size of an mp4's first video stream, without decoding (ffmpeg copies the packets).
    -> {"frames": F, "width": W, "height": H}. Raises DataError for a file ffmpeg cannot open (corrupt,
    truncated before its index, not a video)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing")
    r = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                        "-f", "null", "-"], capture_output=True, text=True)
    if r.returncode != 0:
        raise DataError(path, f"not a readable video (corrupt or truncated?): ffmpeg says '{_first_error(r.stderr)}'")
    size = re.search(r"Stream #0:\d+.*?Video:.*?, (\d{2,5})x(\d{2,5})", r.stderr)
    frames = re.findall(r"frame=\s*(\d+)", r.stderr)
    if not size or not frames:
        raise DataError(path, "ffmpeg found no video stream in it")
    rate = re.search(r"Video:.*?, ([\d.]+) fps, ([\d.]+) tbr", r.stderr)
    start = re.search(r"start: (-?[\d.]+)", r.stderr)
    cfr = bool(rate and start and rate.group(1) == rate.group(2) and abs(float(start.group(1))) < 1e-6)
    return {"frames": int(frames[-1]), "width": int(size.group(1)), "height": int(size.group(2)),
            "cfr_fps": float(rate.group(1)) if cfr else 0.0}


def fov_crop(K, width: int, height: int, hfov_deg: float) -> tuple:
    """The square crop (x0, y0, side) in pixels, centred on the principal point, that covers ``hfov_deg``
    horizontally, or the largest centred square when the frame is narrower; -> (x0, y0, side, covered
    horizontal FOV in degrees)."""
    fx, cx, cy = float(K[0, 0]), float(K[0, 2]), float(K[1, 2])
    want = 2.0 * fx * np.tan(np.deg2rad(hfov_deg) / 2.0)
    room = 2.0 * min(cx, width - cx, cy, height - cy, width / 2.0, height / 2.0)
    side = int(np.clip(round(min(want, room) + 1e-6), 1, min(width, height)))
    x0 = int(np.clip(round(cx - side / 2.0), 0, width - side))
    y0 = int(np.clip(round(cy - side / 2.0), 0, height - side))
    return x0, y0, side, float(np.rad2deg(2.0 * np.arctan(side / (2.0 * fx))))


def decode_mp4(path, indices, crop=None, size: int | None = None, width: int = 0, height: int = 0,
               seek_fps: float = 0.0) -> np.ndarray:
    """Frames ``indices`` (any order, repeats allowed) of an mp4 -> uint8 (len(indices), h, w, 3).

    Args:
        crop: (x0, y0, side) square in source pixels; None keeps the whole (W, H) frame.
        size: resize the (cropped, square) frames to S x S; None keeps their size. Needs ``crop``.
        width, height: the source frame size W, H (from ``probe_mp4``).
        seek_fps: > 0 for a constant-frame-rate video whose frame i starts at i / seek_fps (``seekable``):
            ffmpeg then seeks to the first frame asked for instead of decoding everything before it.
    """
    path = Path(path)
    idx = np.asarray(indices, np.int64)
    last = int(idx.max()) if len(idx) else -1
    first = int(idx.min()) if (len(idx) and seek_fps > 0) else 0
    filters, (w, h) = [], (width, height)
    if crop is not None:
        if (crop[2], crop[2]) != (width, height):
            filters.append(f"crop={crop[2]}:{crop[2]}:{crop[0]}:{crop[1]}")
        w = h = crop[2]
        if size is not None and size != crop[2]:
            filters.append(f"scale={size}:{size}:flags=area")
            w = h = size
    elif size is not None:
        raise ValueError("decode_mp4: size needs a square crop")
    seek = ["-ss", f"{(first - 0.5) / seek_fps:.6f}"] if first > 0 else []   # half a frame early: lands on it
    cmd = [_ffmpeg(), "-v", "error", "-nostdin", "-threads", "1", *seek, "-i", str(path), "-map", "0:v:0",
           "-frames:v", str(last + 1 - first), "-fps_mode", "passthrough"]
    if filters:
        cmd += ["-vf", ",".join(filters)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    r = subprocess.run(cmd, capture_output=True)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0 or err.strip():
        raise DataError(path, f"cannot decode frames {first}..{last} (corrupt?): ffmpeg says '{_first_error(err)}'")
    per = w * h * 3
    n = len(r.stdout) // per if per else 0
    if n < last + 1 - first:
        raise DataError(path, f"truncated: decoded {first + n} frames, frame {last} was asked for")
    frames = np.frombuffer(r.stdout, np.uint8, count=(last + 1 - first) * per).reshape(last + 1 - first, h, w, 3)
    return frames[idx - first]


SEEK_MIN_FRAMES = 64   # shorter videos decode from the start at no real cost: not worth the check


def seekable(path, frames: int, width: int, height: int, cfr_fps: float) -> float:
    """``cfr_fps`` if seeking by time lands on the very frames that counting does (checked on the middle
    and the last frame, small), else 0.0 (then reads decode from the start)."""
    if cfr_fps <= 0 or frames < SEEK_MIN_FRAMES:
        return 0.0
    probe = [frames // 2, frames - 1]
    crop, args = (0, 0, min(width, height)), dict(width=width, height=height)
    exact = decode_mp4(path, probe, crop, 16, **args)
    sought = np.concatenate([decode_mp4(path, [i], crop, 16, seek_fps=cfr_fps, **args) for i in probe])
    return cfr_fps if np.array_equal(exact, sought) else 0.0


def read_images(files, crop=None, size: int | None = None) -> np.ndarray:
    """Image files -> uint8 (len(files), S, S, 3): RGB, cropped to ``crop`` (x0, y0, side), resized to
    ``size`` with box (area) filtering."""
    from PIL import Image

    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")
                if crop is not None:
                    x0, y0, s = crop
                    im = im.crop((x0, y0, x0 + s, y0 + s))
                if size is not None and im.size != (size, size):
                    im = im.resize((size, size), Image.BOX)
                out.append(np.asarray(im, np.uint8))
        except (OSError, ValueError, SyntaxError) as e:   # PIL: truncated or not an image
            raise DataError(f, f"cannot read the image (corrupt or truncated?): {e}") from e
    if not out:
        return np.zeros((0, size or 0, size or 0, 3), np.uint8)
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise DataError(Path(files[0]).parent, f"frames differ in size: {sorted(shapes)}")
    return np.stack(out)


def image_size(path) -> tuple:
    """(W, H) from the image header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(path, f"not a readable image: {e}") from e


def verify_image(path):
    """Decode the whole image: raises DataError if it is corrupt or truncated."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(path, f"cannot decode the image (corrupt or truncated?): {e}") from e
