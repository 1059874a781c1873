"""``camworld dataset import`` and ``camworld dataset check``: argparse wiring only (``camworld dataset``
itself, the sim export, lives in ``camworld.sim.dataset``, which adds these as its actions)."""

from __future__ import annotations

import argparse


def add_subcommands(sub):
    imp = sub.add_parser("import", help="convert a RealEstate10K-style clip folder or an image folder + JSON")
    imp.add_argument("layout", choices=["realestate10k", "json-images"])
    imp.add_argument("src", help="realestate10k: a clip .txt or a folder of them (frames in CLIP/ beside each); "
                                 "json-images: the image folder")
    imp.add_argument("dst", help="new data set folder")
    imp.add_argument("--scale", type=float, default=1.0, help="realestate10k: multiply translations (to metres)")
    imp.add_argument("--frames-root", default=None, help="realestate10k: folder holding CLIP/ frame folders "
                                                         "(default: beside the .txt)")
    imp.add_argument("--axes", choices=["opengl", "opencv"], default=None,
                     help="json-images (required): camera axes of the matrices: opengl (NeRF, Blender, "
                          "nerfstudio: y up, z backward) or opencv (y down, z forward)")
    imp.add_argument("--poses", default=None, help="json-images: the JSON file (default: the folder's only .json)")
    imp.add_argument("--hfov", type=float, default=None, help="json-images: horizontal FOV in degrees when the "
                                                              "JSON has no intrinsics")
    imp.add_argument("--fps", type=float, default=30.0, help="json-images: frame rate when frames have no timestamps")
    imp.add_argument("--link", action="store_true", help="hard-link the frames instead of copying them")
    imp.add_argument("--skip-bad", action="store_true", help="realestate10k: leave bad clips out and count them")
    chk = sub.add_parser("check", help="validate a data set; --full also decodes every frame")
    chk.add_argument("dir")
    chk.add_argument("--full", action="store_true", help="decode every frame too (finds corruption inside streams)")
    chk.add_argument("--skip-bad", action="store_true", help="report every bad video instead of stopping at the first")


def run(args: argparse.Namespace) -> int:
    from camworld.recorded.frames import DataError

    try:
        return _import(args) if args.action == "import" else _check(args)
    except DataError as e:
        raise SystemExit(f"camworld dataset {args.action}: {e}") from e


def _import(args) -> int:
    from camworld.recorded import importers

    if args.layout == "realestate10k":
        res = importers.import_realestate10k(args.src, args.dst, scale=args.scale, frames_root=args.frames_root,
                                             link=args.link, skip_bad=args.skip_bad)
    else:
        if args.axes is None:
            raise SystemExit("camworld dataset import json-images: pass --axes opengl (NeRF, Blender, nerfstudio) "
                             "or --axes opencv: the matrices alone do not say which camera axes they use")
        res = importers.import_json_images(args.src, args.dst, axes=args.axes, poses=args.poses,
                                           hfov_deg=args.hfov, fps=args.fps, link=args.link)
    for path, why in res["skipped"]:
        print(f"skipped {path}: {why}")
    print(f"imported {len(res['videos'])} videos into {args.dst} (skipped {len(res['skipped'])})")
    return _check(argparse.Namespace(dir=args.dst, full=False, skip_bad=False))


def _check(args) -> int:
    from camworld.recorded.reader import open_dataset

    index = open_dataset(args.dir, skip_bad=args.skip_bad, full=args.full)
    frames = sum(v.frames for v in index.videos)
    kinds = sorted({v.source for v in index.videos})
    print(f"{args.dir}: {len(index.videos)} good videos ({len(index.split('heldout'))} held out), {frames} frames "
          f"({', '.join(kinds)}); cameras {'planar (level, constant height)' if index.planar else 'full 6-DoF'}")
    for path, why in index.skipped:
        print(f"  bad: {why}")
    if index.skipped:
        print(f"  {len(index.skipped)} bad videos (training with --skip-bad leaves them out)")
    return 1 if index.skipped else 0
