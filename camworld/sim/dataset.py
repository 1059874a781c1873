"""``camworld dataset``: export long videos with per-frame cameras and captions, resumably.

Layout of an export directory (also written into it as ``README.md`` and ``format.json``)::

    DIR/
      format.json            export settings + field descriptions (machine-readable)
      README.md              the same, for people
      videos/000000/
        video.mp4            H.264 (CRF 17), 30 fps, frames uint8 (H, W, 3), one per camera
        cameras.npz          intrinsics (F, 3, 3) float64, extrinsics (F, 3, 4) float64
                             camera-to-world [R|t] (OpenCV axes: x right, y down, z forward;
                             world z up), poses (F, 3) float64 planar (x, y, yaw)
        captions.json        {"every": 77, "scene": str, "segments": [{"start", "end", "text"}]}
        depth.npz            (with --depth) depth (F, H, W) float32 metres along the optical axis
        meta.json            seed, style, heldout, frames, fps, size, hfov_deg
        DONE                 written last: a video without it is incomplete and is redone

Every file is written all-or-nothing (``camworld.files.atomic_write``), and ``DONE``
comes last, so an interrupted export never leaves a file that looks complete. Rerunning the same
command resumes: finished videos are skipped, unfinished ones are rendered again from scratch.
Everything is deterministic in (seed, settings). mp4 is lossy: for exact pixels re-render the
poses with ``camworld.sim.render`` (same scene seed and style from meta.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from camworld import geometry
from camworld.files import atomic_write, write_text
from camworld.sim.captions import scene_caption, segment_captions
from camworld.sim.render import render
from camworld.sim.trajectories import SEGMENT_FRAMES, random_trajectory
from camworld.sim.worldgen import EVAL_SEED_OFFSET, STYLES, is_heldout, make_scene

FORMAT_VERSION = 1
FPS = 30
_RENDER_BATCH = 512
_FIELDS = {
    "video.mp4": "H.264 video (CRF 17, yuv420p), 30 fps, uint8 RGB frames (H, W, 3); lossy",
    "cameras.npz:intrinsics": "(F, 3, 3) float64 pinhole K; principal point at the image centre",
    "cameras.npz:extrinsics": "(F, 3, 4) float64 camera-to-world [R|t], OpenCV camera axes, world z up, metres",
    "cameras.npz:poses": "(F, 3) float64 planar (x, y, yaw): metres, radians about +z, yaw 0 looks along +x",
    "captions.json": "{'every': 77, 'scene': caption of the scene, 'segments': [{'start', 'end', 'text'}]}",
    "depth.npz:depth": "(F, H, W) float32 z-depth in metres (sky and beyond the far limit read FAR)",
    "meta.json": "seed, style, heldout, frames, fps, size, hfov_deg, camera_height, far",
    "DONE": "completion marker, written last",
}


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--scenes", type=int, required=True, help="number of videos (one scene each)")
    p.add_argument("--frames", type=int, required=True, help="frames per video (30 fps)")
    p.add_argument("--out", required=True, help="export directory (created; rerun to resume)")
    p.add_argument("--size", type=int, default=64, help="frame height and width in pixels (even)")
    p.add_argument("--depth", action="store_true", help="also write depth.npz per video")
    p.add_argument("--seed", type=int, default=0,
                   help=f"first scene seed; video i uses seed + i (>= {EVAL_SEED_OFFSET} is the held-out range)")
    p.add_argument("--style", choices=STYLES, default=None, help="one style for all videos (default: by seed)")




def _write_npz(path: Path, **arrays):
    def w(t):
        with open(t, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    atomic_write(path, w)


def _write_mp4(path: Path, frames: np.ndarray, fps: int = FPS):
    """H.264 (CRF 17, yuv420p) via imageio-ffmpeg. moviepy 2's ``ImageSequenceClip.write_videofile``
    drops the last frame for some lengths (160 frames at 30 fps come out as 159), which would break
    the one-camera-per-frame contract, so frames go straight to ffmpeg."""
    import imageio_ffmpeg

    F, H, W, _ = frames.shape

    def w(t):
        writer = imageio_ffmpeg.write_frames(str(t), (W, H), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=1, quality=None, output_params=["-crf", "17"],
                                             ffmpeg_log_level="error")
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()
    atomic_write(path, w)


def read_frames(path) -> np.ndarray:
    """All frames of an mp4 as uint8 (F, H, W, 3)."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    W, H = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(H, W, 3) for b in gen]
    return np.stack(frames) if frames else np.zeros((0, H, W, 3), np.uint8)


def _settings(frames, size, depth, hfov_deg) -> dict:
    return dict(format_version=FORMAT_VERSION, frames=int(frames), fps=FPS, size=int(size), depth=bool(depth),
                hfov_deg=float(hfov_deg), camera_height=geometry.CAMERA_HEIGHT, caption_every=SEGMENT_FRAMES)


def _readme(settings: dict) -> str:
    doc = __doc__.split("Layout of an export directory", 1)[1]
    lines = ["# camworld dataset export", "", "Layout of an export directory" + doc.rstrip(), "",
             "## Settings", "", "```json", json.dumps(settings, indent=2), "```", "",
             "## Reading", "", "```python",
             "from camworld.sim.dataset import read_video",
             "v = read_video('DIR/videos/000000')   # frames, intrinsics, extrinsics, poses, captions, meta",
             "```", ""]
    return "\n".join(lines)


def export_video(vdir: Path, seed: int, style, frames: int, size: int, depth: bool, hfov_deg: float):
    """Render and write one complete video directory (DONE last)."""
    vdir.mkdir(parents=True, exist_ok=True)
    done = vdir / "DONE"
    if done.exists():
        done.unlink()
    scene = make_scene(seed, style)
    poses = random_trajectory(scene, frames, np.random.default_rng([seed, 1]), fps=FPS)
    rgb = np.empty((frames, size, size, 3), np.uint8)
    dep = np.empty((frames, size, size), np.float32) if depth else None
    for a in range(0, frames, _RENDER_BATCH):
        r, d = render(scene, poses[a:a + _RENDER_BATCH], size, size, hfov_deg)
        rgb[a:a + len(r)] = r
        if depth:
            dep[a:a + len(r)] = d
    K = np.broadcast_to(geometry.intrinsics(size, size, hfov_deg), (frames, 3, 3)).copy()
    _write_mp4(vdir / "video.mp4", rgb)
    _write_npz(vdir / "cameras.npz", intrinsics=K, extrinsics=geometry.planar_to_extrinsics(poses), poses=poses)
    if depth:
        _write_npz(vdir / "depth.npz", depth=dep)
    rng = np.random.default_rng([seed, 2])
    caps = segment_captions(scene, poses, rng, SEGMENT_FRAMES)
    segs = [dict(start=i * SEGMENT_FRAMES, end=min(frames, (i + 1) * SEGMENT_FRAMES), text=c) for i, c in enumerate(caps)]
    write_text(vdir / "captions.json", json.dumps(dict(every=SEGMENT_FRAMES, scene=scene_caption(scene, rng),
                                                        segments=segs), indent=1))
    from camworld.sim.render import FAR
    meta = dict(seed=int(seed), style=scene.style, heldout=is_heldout(seed), frames=int(frames), fps=FPS,
                size=int(size), hfov_deg=float(hfov_deg), camera_height=geometry.CAMERA_HEIGHT, far=FAR)
    write_text(vdir / "meta.json", json.dumps(meta, indent=1))
    write_text(done, "ok\n")


def export(out, scenes: int, frames: int, size: int = 64, depth: bool = False, seed: int = 0, style=None,
           hfov_deg: float = geometry.DEFAULT_HFOV_DEG, progress: bool = True) -> list:
    """Export ``scenes`` videos of ``frames`` frames into ``out`` (resumable). Returns the video dirs.

    Raises:
        ValueError: bad counts or size, or ``out`` holds an export made with other settings.
    """
    for name, v, lo in (("scenes", scenes, 1), ("frames", frames, 1), ("size", size, 16), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if size % 2:
        raise ValueError(f"size must be even (H.264 needs even frame sizes), got {size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(frames, size, depth, hfov_deg)
    fmt = out / "format.json"
    if fmt.exists():
        old = json.loads(fmt.read_text())["settings"]
        if old != settings:
            raise ValueError(f"{out} holds an export with other settings {old}; these are {settings}. "
                             "Use a new --out directory or the same settings to resume.")
    else:
        write_text(fmt, json.dumps(dict(settings=settings, fields=_FIELDS), indent=1))
        write_text(out / "README.md", _readme(settings))
    dirs = [out / "videos" / f"{i:06d}" for i in range(scenes)]
    todo = [i for i, d in enumerate(dirs) if not (d / "DONE").exists()]
    it = todo
    if progress:
        from tqdm import tqdm
        it = tqdm(todo, desc="videos", unit="video", initial=scenes - len(todo), total=scenes)
    for i in it:
        export_video(dirs[i], seed + i, style, frames, size, depth, hfov_deg)
    return dirs


def read_video(vdir) -> dict:
    """Read one exported video directory: frames uint8 (F, H, W, 3), intrinsics, extrinsics, poses,
    captions (dict), meta (dict) and depth when present. Raises ValueError if it is incomplete."""
    vdir = Path(vdir)
    if not (vdir / "DONE").exists():
        raise ValueError(f"{vdir} is incomplete (no DONE marker); rerun the export to finish it")
    frames = read_frames(vdir / "video.mp4")
    cams = np.load(vdir / "cameras.npz")
    out = dict(frames=frames, intrinsics=cams["intrinsics"], extrinsics=cams["extrinsics"], poses=cams["poses"],
               captions=json.loads((vdir / "captions.json").read_text()),
               meta=json.loads((vdir / "meta.json").read_text()))
    if (vdir / "depth.npz").exists():
        out["depth"] = np.load(vdir / "depth.npz")["depth"]
    return out


def run(args) -> int:
    dirs = export(args.out, args.scenes, args.frames, args.size, args.depth, args.seed, args.style)
    print(f"{len(dirs)} videos in {args.out} (format: {Path(args.out) / 'README.md'})")
    return 0
