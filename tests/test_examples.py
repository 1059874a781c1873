"""Every example runs end to end with small settings (they are the first code users copy)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "random_agent.py": (["--steps", "3", "--out", "{tmp}/random.mp4"], "frames of scene"),
    "return_to_start.py": (["--episodes", "1", "--out", "{tmp}/return.mp4"], "PSNR vs start frame"),
    "ppo_explore.py": (["--timesteps", "32", "--num-envs", "2"], ""),
    "goal_view.py": (["--timesteps", "32", "--num-envs", "2", "--episodes", "1"], ""),
    "multi_agent.py": (["--agents", "2", "--steps", "2"], "shared memory holds"),
    "train_in_generated_world.py": (["--timesteps", "16", "--num-envs", "2", "--episodes", "1",
                                     "--max-episode-steps", "4", "--save", "{tmp}/agent"], "twin return"),
    "train_in_generated_world.py --retrieval recent": (["--timesteps", "16", "--num-envs", "2", "--episodes", "1",
                                                        "--max-episode-steps", "4", "--save", "{tmp}/agent",
                                                        "--blur", "2"],
                                                       "trained in the generated world, recent"),
    "train_in_generated_world.py --algo ppo": (["--timesteps", "16", "--num-envs", "2", "--episodes", "2",
                                                "--save", "{tmp}/agent.zip"], "goals left / right"),
}


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {name.split()[0] for name in CASES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path):
    args, expect = CASES[name]
    script, *extra = name.split()           # "file.py --flag value": the same example with other settings
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", SDL_VIDEODRIVER="dummy")
    res = subprocess.run([sys.executable, str(EXAMPLES / script), *extra, *[a.format(tmp=tmp_path) for a in args]],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert expect in res.stdout
    for out in tmp_path.glob("*.mp4"):
        assert out.stat().st_size > 0
