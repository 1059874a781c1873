"""Time one DiT sampling pass of the shipped model at 16 worlds (4 context and 4 target frames, one network call
from the warp start, bfloat16) and print a checksum of the latents, so two code trees can be compared pass for
pass: run it alternately with each tree first on PYTHONPATH (from outside the repository, so the working tree
is not imported instead), e.g.

    for r in 1 2 3 4; do PYTHONPATH=/tmp/old python scripts/dit_pass_ab.py old; python scripts/dit_pass_ab.py new; done
"""

import sys
import time

import numpy as np
import torch

from camworld.geometry import planar_to_extrinsics
from camworld.model import WorldModel
from camworld.model.world_model import DEFAULT_CHECKPOINT, cast_dit


def main(label: str, threads: int = 2, worlds: int = 16, frames: int = 4, reps: int = 10):
    torch.set_num_threads(threads)
    m = WorldModel.load(DEFAULT_CHECKPOINT).eval()
    dit = cast_dit(m.dit, torch.bfloat16)
    C, h, w = m.latent_shape
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    ctx = torch.randn(worlds, frames, C, h, w, generator=g)
    mask = torch.ones(worlds, frames, dtype=torch.bool)
    ce = torch.as_tensor(planar_to_extrinsics(rng.uniform(-1, 1, (worlds, frames, 3))), dtype=torch.float32)
    te = torch.as_tensor(planar_to_extrinsics(rng.uniform(-1, 1, (worlds, frames, 3))), dtype=torch.float32)
    noise = torch.randn(worlds, frames, C, h, w, generator=g)

    def run():
        return m.generate(ctx, mask, ce, te, [None] * worlds, steps=4, noise=noise, dit=dit, start=0.3)

    with torch.no_grad():
        out = run()
        for _ in range(3):
            run()
        t = time.perf_counter()
        for _ in range(reps):
            run()
    print(label, f"{(time.perf_counter() - t) / reps * 1e3:.1f} ms per {worlds}-world pass",
          f"checksum {out.double().sum():.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "this tree")
