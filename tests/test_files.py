"""camworld.files: all-or-nothing writes (the helper behind checkpoints, worlds, banks, datasets, PNGs)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from camworld.files import atomic_write, write_bytes, write_text


def test_replaces_the_file_with_the_umask_mode(tmp_path):
    p = tmp_path / "a.json"
    write_text(p, "old")
    assert write_text(p, "new", durable=True) == p and p.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask        # not mkstemp's 0600
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "bank.npz"
    write_bytes(p, b"complete")

    def half_then_fail(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(p, half_then_fail, prefix=".memory-")
    assert p.read_bytes() == b"complete"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bank.npz"]


def test_temporaries_keep_the_extension_for_writers_that_need_it(tmp_path):
    from camworld.viz import save_png

    seen = []
    atomic_write(tmp_path / "x.png", lambda tmp: seen.append(os.path.basename(tmp)) or open(tmp, "wb").close())
    assert seen[0].startswith(".x.png.") and seen[0].endswith(".tmp.png")
    img = np.zeros((4, 4, 3), np.uint8)
    img[1, 2] = 255
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(save_png(tmp_path / "y.png", img))), img)  # PIL picked PNG
