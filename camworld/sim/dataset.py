"""``camworld dataset``: export long videos of the sim, with per-frame cameras and captions, resumably, in
the ``camworld.posed-videos`` format (version 2; ``camworld.recorded.schema``, docs/DATA.md) that
``camworld train --data`` reads and that other tools can write too.

    camworld dataset --scenes 8 --frames 600 --out DIR                     # 30 fps random walks (mp4)
    camworld dataset --scenes 8 --frames 800 --paths revisits --out DIR    # model frame rate, with revisits
    camworld dataset import realestate10k SRC OUT | import json-images SRC OUT --axes opengl
    camworld dataset check DIR [--full] [--skip-bad]

Per video (``videos/000000/``): ``video.mp4`` (H.264, CRF 17: lossy) or, with ``--image-frames``, lossless
``frames/*.png``; ``cameras.npz`` (timestamps, intrinsics, c2w, and the planar ``poses`` (F, 3) as an
extra); ``captions.json`` (one caption per 77 frames and the scene's); ``depth.npz`` with ``--depth``;
``meta.json`` (scene seed, style, settings). Paths:
- ``random``: the sim's smooth random walk at 30 fps, as before.
- ``revisits``: the training walk at model frame rate (every ``--stride``-th frame of the 30 fps walk,
  7.5 fps by default), with a turn-away-and-back or walk-away-and-back excursion every 30-90 frames:
  the revisits that on-the-fly training builds into its samples (``camworld.sim.excursions``).
Every file is written all-or-nothing, a per-video ``DONE`` marker last, and ``dataset.json`` (which
publishes the videos) at the very end, so an interrupted export never looks complete. Rerunning the same
command resumes: finished videos are skipped. Everything is deterministic in (seed, settings).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from camworld import geometry
from camworld.files import write_text
from camworld.recorded import schema
from camworld.sim.captions import scene_caption, segment_captions
from camworld.sim.excursions import revisit_walk
from camworld.sim.render import FAR, render
from camworld.sim.trajectories import SEGMENT_FRAMES, random_trajectory
from camworld.sim.worldgen import EVAL_SEED_OFFSET, STYLES, is_heldout, make_scene

SIM_FPS = 30
PATHS = ("random", "revisits")
_RENDER_BATCH = 512


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--scenes", type=int, help="number of videos (one scene each)")
    p.add_argument("--frames", type=int, help="frames per video")
    p.add_argument("--out", help="export directory (created; rerun to resume)")
    p.add_argument("--size", type=int, default=64, help="frame height and width in pixels (even)")
    p.add_argument("--depth", action="store_true", help="also write depth.npz per video")
    p.add_argument("--seed", type=int, default=0,
                   help=f"first scene seed; video i uses seed + i (>= {EVAL_SEED_OFFSET} is the held-out range)")
    p.add_argument("--style", choices=STYLES, default=None, help="one style for all videos (default: by seed)")
    p.add_argument("--paths", choices=PATHS, default="random",
                   help="random: 30 fps random walks; revisits: the training walk at model frame rate with "
                        "excursions (what `camworld train --data` needs to learn memory)")
    p.add_argument("--stride", type=int, default=4, help="--paths revisits: 30 fps frames per model frame")
    p.add_argument("--heldout", type=int, default=0,
                   help=f"also export this many videos of held-out scenes (seeds {EVAL_SEED_OFFSET} + seed + i), "
                        "split 'heldout': training reports its held-out numbers on them")
    p.add_argument("--image-frames", action="store_true", help="lossless PNG frames instead of video.mp4")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    from camworld.recorded import cli

    cli.add_subcommands(sub)


def _settings(frames, size, depth, hfov_deg, paths, stride, image_frames) -> dict:
    fps = SIM_FPS if paths == "random" else SIM_FPS / stride
    return dict(frames=int(frames), fps=fps, size=int(size), depth=bool(depth), hfov_deg=float(hfov_deg),
                camera_height=geometry.CAMERA_HEIGHT, caption_every=SEGMENT_FRAMES, paths=paths,
                stride=int(stride) if paths == "revisits" else 1, frames_as="png" if image_frames else "mp4")


def video_poses(scene, seed: int, frames: int, paths: str, stride: int) -> np.ndarray:
    """The camera path of one exported video: (frames, 3) planar poses."""
    if paths == "random":
        return random_trajectory(scene, frames, np.random.default_rng([seed, 1]), fps=SIM_FPS)
    # the training walk (camworld.data.scene_track for frames * stride = its 2,400 sim frames), with excursions
    base = random_trajectory(scene, frames * stride, np.random.default_rng([seed, 1]))[::stride]
    return revisit_walk(scene, base, np.random.default_rng([seed, 3]))[:frames]


def export_video(vdir: Path, seed: int, style, settings: dict):
    """Render and write one complete video folder (DONE last)."""
    vdir.mkdir(parents=True, exist_ok=True)
    done = vdir / "DONE"
    if done.exists():
        done.unlink()
    F, size, hfov = settings["frames"], settings["size"], settings["hfov_deg"]
    scene = make_scene(seed, style)
    poses = video_poses(scene, seed, F, settings["paths"], settings["stride"])
    rgb = np.empty((F, size, size, 3), np.uint8)
    dep = np.empty((F, size, size), np.float32) if settings["depth"] else None
    for a in range(0, F, _RENDER_BATCH):
        r, d = render(scene, poses[a:a + _RENDER_BATCH], size, size, hfov)
        rgb[a:a + len(r)] = r
        if dep is not None:
            dep[a:a + len(r)] = d
    rng = np.random.default_rng([seed, 2])
    caps = segment_captions(scene, poses, rng, SEGMENT_FRAMES)
    segs = [dict(start=i * SEGMENT_FRAMES, end=min(F, (i + 1) * SEGMENT_FRAMES), text=c) for i, c in enumerate(caps)]
    captions = dict(every=SEGMENT_FRAMES, scene=scene_caption(scene, rng), segments=segs)
    meta = dict(seed=int(seed), style=scene.style, heldout=is_heldout(seed), frames=F, fps=settings["fps"],
                size=size, hfov_deg=hfov, camera_height=geometry.CAMERA_HEIGHT, far=FAR, paths=settings["paths"])
    K = np.broadcast_to(geometry.intrinsics(size, size, hfov), (F, 3, 3))
    schema.write_video(vdir, rgb, np.arange(F) / settings["fps"], K, geometry.planar_to_extrinsics(poses),
                       depth=dep, captions=captions, meta=meta,
                       image_ext=".png" if settings["frames_as"] == "png" else None, poses=poses)
    write_text(done, "ok\n")


def export(out, scenes: int, frames: int, size: int = 64, depth: bool = False, seed: int = 0, style=None,
           hfov_deg: float = geometry.DEFAULT_HFOV_DEG, progress: bool = True, paths: str = "random",
           stride: int = 4, heldout: int = 0, image_frames: bool = False) -> list:
    """Export ``scenes`` videos (+ ``heldout`` videos of held-out scenes) of ``frames`` frames into ``out``
    (resumable); ``dataset.json`` last. Returns the video dirs.

    Raises:
        ValueError: bad counts or size, or ``out`` holds an export made with other settings.
    """
    for name, v, lo in (("scenes", scenes, 1), ("frames", frames, 1), ("size", size, 16), ("seed", seed, 0),
                        ("stride", stride, 1), ("heldout", heldout, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if size % 2 and not image_frames:
        raise ValueError(f"size must be even (H.264 needs even frame sizes), got {size}; or pass image_frames")
    if paths not in PATHS:
        raise ValueError(f"paths must be one of {PATHS}, got {paths!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "format.json").exists():
        raise ValueError(f"{out} holds a version-1 export (format.json); export into a new directory")
    settings = _settings(frames, size, depth, hfov_deg, paths, stride, image_frames)
    writer = {"tool": "camworld dataset", "settings": settings}
    ds = out / schema.DATASET_FILE
    if ds.exists():
        old = json.loads(ds.read_text()).get("writer", {}).get("settings")
        if old != settings:
            raise ValueError(f"{out} holds an export with other settings {old}; these are {settings}. "
                             "Use a new --out directory or the same settings to resume.")
    else:   # no videos listed yet: a reader calls it unfinished until the end
        write_text(ds, json.dumps(dict(schema=schema.SCHEMA, version=schema.VERSION, videos=[], writer=writer),
                                  indent=1))
    write_text(out / "README.md", _readme(settings))
    jobs = [(f"{i:06d}", seed + i) for i in range(scenes)]
    jobs += [(f"heldout-{i:06d}", EVAL_SEED_OFFSET + seed + i) for i in range(heldout)]
    dirs = [out / "videos" / name for name, _ in jobs]
    todo = [i for i, d in enumerate(dirs) if not (d / "DONE").exists()]
    it = todo
    if progress:
        from tqdm import tqdm
        it = tqdm(todo, desc="videos", unit="video", initial=len(jobs) - len(todo), total=len(jobs))
    for i in it:
        export_video(dirs[i], jobs[i][1], style, settings)
    schema.write_dataset(out, [{"path": f"videos/{name}", "split": "heldout" if is_heldout(s) else "train"}
                               for name, s in jobs], writer)
    return dirs


def _readme(settings: dict) -> str:
    return "\n".join([
        "# camworld dataset export", "",
        f"Format: `{schema.SCHEMA}` version {schema.VERSION} (camworld's docs/DATA.md). `dataset.json` lists the "
        "videos; each folder holds the frames (`video.mp4` or `frames/`), `cameras.npz` (timestamps, intrinsics "
        "in pixels, camera-to-world `c2w` in OpenCV axes, world z up, metres), `captions.json`, `meta.json` "
        "and, with --depth, `depth.npz`.", "",
        "```python", "from camworld.recorded import open_dataset, read_video",
        "index = open_dataset('DIR')               # validates every video",
        "v = read_video('DIR/videos/000000')       # frames, timestamps, intrinsics, c2w, captions, meta", "```",
        "", "## Settings", "", "```json", json.dumps(settings, indent=2), "```", ""])


def run(args) -> int:
    if args.action:
        from camworld.recorded import cli

        return cli.run(args)
    missing = [f"--{n}" for n in ("scenes", "frames", "out") if getattr(args, n) is None]
    if missing:
        raise SystemExit(f"camworld dataset: the export needs {' '.join(missing)} (or an action: import, check)")
    dirs = export(args.out, args.scenes, args.frames, args.size, args.depth, args.seed, args.style,
                  paths=args.paths, stride=args.stride, heldout=args.heldout, image_frames=args.image_frames)
    print(f"{len(dirs)} videos in {args.out} ({schema.SCHEMA} v{schema.VERSION}; {Path(args.out) / 'README.md'})")
    return 0
