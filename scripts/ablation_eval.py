"""The fidelity ablations' scoring protocol (docs/benchmarks/fidelity.md, "Ablations at equal budget"):
16 held-out episodes, the discrete driver, 20-step rollouts, rot180 memory, no twin.

    python scripts/ablation_eval.py CHECKPOINT OUT [CONTEXT_NOISE|-] [THREADS]

CHECKPOINT "-" is the shipped model; CONTEXT_NOISE "-" (default) is the checkpoint's own setting.
Writes OUT/results.md, results.json, rollout_curves.png, rollout_discrete.{png,mp4} and prints the tables.
"""

import sys
import time

import torch


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    torch.set_num_threads(int(argv[3]) if len(argv) > 3 else 1)
    from camworld import fidelity
    from camworld.world import load_world_model

    model = load_world_model(None if argv[0] == "-" else argv[0], device="cpu")
    noise = float(argv[2]) if len(argv) > 2 and argv[2] != "-" else None
    t = time.time()
    res = fidelity.evaluate(model, episodes=16, steps=20, drivers=("discrete",), twin=False,
                            memory_kinds=("rot180",), context_noise=noise, out=argv[1])
    print(fidelity.markdown(res))
    print(f"seconds {time.time() - t:.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
