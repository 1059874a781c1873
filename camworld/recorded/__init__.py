"""Recorded posed videos on disk: the ``camworld.posed-videos`` format (docs/DATA.md), its writers, a
validating reader and importers from RealEstate10K-style clips and image folders with one JSON of poses.

    from camworld.recorded import open_dataset, read_video, write_video, write_dataset
    index = open_dataset("DIR")                 # validates every video; DataError names a bad file
    v = read_video("DIR/videos/000000")         # frames, timestamps, intrinsics, c2w (+ depth, captions)

Modules: ``schema`` (the format and its writers), ``frames`` (mp4 / image reading, crop and resize,
``DataError``), ``reader`` (validation, ``DatasetIndex``), ``importers``, ``cli`` (``camworld dataset import``
and ``camworld dataset check``). Training on a data set: ``camworld train --data DIR`` (``camworld.train``).
"""

from camworld.recorded.frames import DataError
from camworld.recorded.reader import DatasetIndex, VideoInfo, is_planar, load_cameras, open_dataset, read_video
from camworld.recorded.schema import SCHEMA, VERSION, write_cameras, write_dataset, write_video

__all__ = ["SCHEMA", "VERSION", "DataError", "DatasetIndex", "VideoInfo", "open_dataset", "read_video",
           "load_cameras", "is_planar", "write_video", "write_cameras", "write_dataset"]
