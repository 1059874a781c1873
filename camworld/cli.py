"""The ``camworld`` command line: a thin dispatcher over modules that each own one subcommand.

Each target module defines ``add_arguments(parser)`` and ``run(args) -> int | None``; it is imported
only when its subcommand runs, so ``camworld --help`` stays fast and heavy dependencies stay at the edge.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help)
COMMANDS = {
    "demo": ("camworld.demo", "return-to-start demo in the default generated world -> demo.mp4"),
    "dataset": ("camworld.sim.dataset", "export long videos with camera poses and captions"),
    "preview": ("camworld.sim.preview", "PNG contact sheet of every scene style with top-down maps"),
    "train": ("camworld.train", "train the VAE or the DiT world model (Algorithm 1)"),
    "eval": ("camworld.eval", "benchmarks: memory (return-to-start), fidelity, agents (train in the world, "
                              "score in the twin), goal-cue (do the frames tell a goal-view agent it arrived)"),
    "play": ("camworld.envs.play", "interactive play in a pygame window"),
    "retrieval": ("camworld.retrieval.show", "retrieval tools: `camworld retrieval show`"),
}

# `camworld <command> <what>` served by another module than the command's: (command, what) -> module
ROUTES = {("eval", "agents"): "camworld.agents.benchmark", ("eval", "goal-cue"): "camworld.agents.cue"}

# `camworld bench <what>`: what -> (module, help); each module defines bench_arguments(p) and bench(args)
BENCHES = {
    "render": ("camworld.sim.bench", "renderer frames/s"),
    "retrieval": ("camworld.retrieval.bench", "retrieval quality vs ground-truth co-visibility and latency"),
    "model": ("camworld.model.bench", "segment sampling time vs context size"),
    "train": ("camworld.train", "training throughput (samples/s)"),
    "env": ("camworld.envs.bench", "env steps/s, batched vs separate"),
    "multi-agent": ("camworld.envs.multi_agent_bench", "history PSNR across cameras: shared memory vs separate"),
}


def _lazy(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:  # a missing optional dependency, not a missing module of ours
        if e.name and not e.name.startswith("camworld"):
            raise SystemExit(f"camworld: this command needs the package '{e.name}': pip install {e.name}")
        raise


def build_parser(argv) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camworld", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Only the chosen subcommand's module is imported.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if name == chosen:
            rest = [a for a in argv[argv.index(name) + 1:] if not a.startswith("-")]
            module = ROUTES.get((name, rest[0]), module) if rest else module
            _lazy(module).add_arguments(p)
            p.set_defaults(_run=_lazy(module).run)
    pb = sub.add_parser("bench", help="benchmarks (ratios against a baseline in the same run)")
    bsub = pb.add_subparsers(dest="bench", metavar="WHAT")
    bsub.required = True
    bench_chosen = argv[argv.index("bench") + 1] if chosen == "bench" and len(argv) > argv.index("bench") + 1 else None
    for name, (module, help_) in BENCHES.items():
        p = bsub.add_parser(name, help=help_)
        if name == bench_chosen:
            _lazy(module).bench_arguments(p)
            p.set_defaults(_run=_lazy(module).bench)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    rc = args._run(args)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
