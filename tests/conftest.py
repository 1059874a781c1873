"""Test-wide settings: one torch thread per test process.

The suite runs as two pytest-xdist workers on two cores; torch's default of one thread per core
would oversubscribe them, and tiny models are far faster single-threaded anyway.
"""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch  # noqa: E402

torch.set_num_threads(1)
