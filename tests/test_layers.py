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


# ---------------------------------------------------------------- import direction (docs/ARCHITECTURE.md)

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"camworld": "camworld", "envs": "camworld.envs", "agents": "camworld.agents"}
# rank of each top-level piece: a module may import its own rank or lower ones, never higher ones
RANKS = {
    "camworld": 0, "camworld.geometry": 0, "camworld.threads": 0, "camworld.files": 0, "camworld.metrics": 0,
    "camworld.viz": 0, "camworld.motion": 0, "camworld.profile": 0,
    "camworld.sim": 1, "camworld.memory": 1, "camworld.model": 1, "camworld.recorded": 1,
    "camworld.retrieval": 2,
    "camworld.world": 3, "camworld.world_io": 3,
    "camworld.data": 4, "camworld.train": 4, "camworld.eval": 4, "camworld.fidelity": 4, "camworld.demo": 4,
    "camworld.envs": 5,
    "camworld.agents": 6,
    "camworld.cli": 7,       # dispatches to the others by module name (strings), imports none of them
}
# known upward imports, each with its reason
ALLOWED_UP = {
    ("camworld", "camworld.envs"): "import camworld registers the env ids (lazily: only envs.registration)",
}


def _modules() -> dict:
    out = {}
    for folder, pkg in FOLDERS.items():
        for f in sorted((ROOT / folder).rglob("*.py")):
            parts = [p for p in f.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([pkg] + parts)] = f
    return out


def _piece(name: str) -> str:
    """camworld.envs.vector -> camworld.envs; camworld.sim.render -> camworld.sim; camworld -> camworld."""
    return ".".join(name.split(".")[:2])


def _imports(path: Path, modules: dict, top_level_only: bool = False) -> set:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:   # module body, including if/try blocks, not function or class bodies
        stack, nodes = list(tree.body), []
        while stack:
            n = stack.pop()
            nodes.append(n)
            if isinstance(n, (ast.If, ast.Try)):
                stack.extend(n.body + n.orelse + getattr(n, "finalbody", []) +
                             [s for h in getattr(n, "handlers", []) for s in h.body])
    out = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names if a.name.startswith("camworld")}
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("camworld"):
            subs = {f"{n.module}.{a.name}" for a in n.names} & set(modules)
            out |= subs or {n.module}
    return out


def test_imports_point_down():
    modules = _modules()
    assert set(map(_piece, modules)) <= set(RANKS), sorted(set(map(_piece, modules)) - set(RANKS))
    bad = []
    for name, path in modules.items():
        src = _piece(name)
        for target in _imports(path, modules):
            dst = _piece(target)
            if RANKS[dst] > RANKS[src] and (src, dst) not in ALLOWED_UP:
                bad.append(f"{name} imports {target}")
    assert not bad, "upward imports (see docs/ARCHITECTURE.md):\n" + "\n".join(bad)


def test_no_import_cycles_at_module_level():
    modules = _modules()
    graph = {m: {t for t in _imports(p, modules, top_level_only=True) if t in modules and t != m}
             for m, p in modules.items()}
    for m in graph:   # a package imports its own submodules; that is not a cycle
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    state, cycle = {}, []

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle.append(path[path.index(t):] + [t] if t in path else path + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycle, f"module-level import cycles: {cycle[:3]}"
