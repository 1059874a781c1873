"""``python -m camworld.train`` and ``torchrun -m camworld.train``."""

import os
import sys

from camworld.train.cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # a torchrun rank whose run is saved and whose process group is closed: leave without the interpreter's
    # teardown, where torch's gloo threads can abort the rank ("terminate called without an active exception";
    # 2 of 3 full test runs on 2 loaded cores, 2026-12-06) and torchrun then reports the finished run as failed
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))
sys.exit(code)
