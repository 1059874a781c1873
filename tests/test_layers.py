"""The layers: importing the core loads no env module and no gymnasium; ``import camworld`` still
registers every id (lazily, in either import order). Fresh interpreters, so nothing is imported yet."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_python(code: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("module", ["camworld", "camworld.geometry", "camworld.world", "camworld.sim",
                                    "camworld.retrieval", "camworld.memory", "camworld.model"])
def test_core_imports_no_gymnasium(module):
    out = run_python(f"import sys, {module}; print(sorted(m for m in sys.modules "
                     "if m.split('.')[0] in ('gymnasium', 'pettingzoo', 'stable_baselines3') "
                     "or m.startswith('camworld.envs')))")
    assert out.strip() == "[]"


@pytest.mark.parametrize("order", ["import camworld, gymnasium", "import gymnasium, camworld",
                                   "import camworld, gymnasium.spaces"])
def test_import_camworld_registers_every_id_lazily(order):
    out = run_python(f"{order}; import sys, gymnasium as gym\n"
                     "from camworld.envs.registration import ENV_IDS\n"
                     "assert all(i in gym.registry for i in ENV_IDS), sorted(gym.registry)\n"
                     "print(sorted(m for m in sys.modules if m.startswith('camworld.envs')))")
    assert out.strip() == "['camworld.envs', 'camworld.envs.registration']"     # no env module yet


def test_module_prefixed_id_works():
    out = run_python("import gymnasium as gym\nenv = gym.make('camworld:CamWorld-v0', frame_size=32)\n"
                     "print(env.reset(seed=0)[0].shape)")
    assert out.strip() == "(32, 32, 3)"
