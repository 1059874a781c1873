"""All-or-nothing file writes: the one helper behind checkpoints, saved worlds, memory banks,
dataset files and PNGs.

``atomic_write(path, write)``: ``write(tmp)`` fills a temporary file beside ``path``, which then
replaces ``path`` in one ``os.replace``. A crash or an exception leaves the old file (or none),
never half a file, and no temporary behind. ``durable=True`` also fsyncs the file and its folder,
so the new file survives a power cut too (saved worlds, whose manifest write is their commit).
The file gets the mode a plain ``open`` would give (the umask's), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TMP_MARK = ".tmp"     # temporaries are named .<name>.<random>.tmp<ext>: writers that pick a format by extension work


def atomic_write(path, write, *, prefix: str | None = None, durable: bool = False) -> Path:
    """Write ``path`` through ``write(tmp_path: str)``; -> ``Path(path)``.

    ``prefix``: the temporary's name prefix (default ``.<name>.``); it ends in ``.tmp`` + the suffix of
    ``path``, so writers that choose a format by extension (PIL, ffmpeg, safetensors) still do.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.", suffix=TMP_MARK + path.suffix)
    os.close(fd)
    try:
        write(tmp)
        if durable:
            fsync(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    if durable:
        fsync(path.parent)
    return path


def write_bytes(path, data: bytes, **kwargs) -> Path:
    """``atomic_write`` of a bytes object."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), **kwargs)


def write_text(path, text: str, **kwargs) -> Path:
    """``atomic_write`` of a str (UTF-8)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), **kwargs)


def fsync(path) -> None:
    """Flush a file or folder to disk (best effort: some platforms cannot open folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
