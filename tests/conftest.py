"""Test-wide settings: one torch thread per test process.

The suite runs as two pytest-xdist workers on two cores; torch's default of one thread per core
would oversubscribe them, and tiny models are far faster single-threaded anyway.
"""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch  # noqa: E402

torch.set_num_threads(1)


import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained ``tiny``-preset world model (32x32 frames) saved once per session: real code paths,
    random weights."""
    from camworld.model import WorldModel, preset

    torch.manual_seed(0)
    return str(WorldModel(preset("tiny")).save(tmp_path_factory.mktemp("ckpt") / "tiny"))


@pytest.fixture(scope="module")
def model():
    """A fresh tiny world model in eval mode."""
    from camworld.model import WorldModel, preset

    torch.manual_seed(0)
    return WorldModel(preset("tiny")).eval()


@pytest.fixture(scope="module")
def start():
    """A real 32x32 start frame and its pose in a held-out scene."""
    from camworld.sim import make_scene, render

    scene = make_scene(1_000_003)
    pose = scene.sample_free_pose(np.random.default_rng(0))
    frame, _ = render(scene, pose, 32, 32)
    return frame[0], pose
