"""Memory retrieval (paper §3.3): pick the k context frames for a target segment from memory poses.

    from camworld.retrieval import retrieve, STRATEGIES, fov_overlap
    idx = retrieve("fov+nonadj", mem_poses, mem_times, target_poses, k=8, rng=np.random.default_rng(0))
    idx = retrieve("fov+nonadj", bank.poses, bank.times, target_poses, 8, rng, index=bank.index)  # same, fast
    idx = retrieve("fov+nonadj", bank.extrinsics(), bank.times, target_ext, 8, rng, index=bank.index)  # 6-DoF

Modules: ``fov`` (the paper's FOV-overlap rule), ``frustum`` (the 6-DoF frustum-overlap rule for full
extrinsics), ``index`` (retrieval through the memory's ``PoseGrid``, same answers), ``registry`` (``retrieve``, ``STRATEGIES``, the
``@strategy`` contract), ``strategies`` (paper strategies and baselines), ``coverage`` (our greedy
view-coverage strategy), ``covis`` (ground-truth co-visibility from sim depth), ``metrics`` (precision / recall / coverage / redundancy), ``bench`` and ``show``
(CLI: ``camworld bench retrieval``, with ``scale`` for the 1e6-frame rows, ``camworld retrieval show``).
"""

from camworld.retrieval.covis import covisibility, visibility
from camworld.retrieval.fov import FovParams, fov_overlap
from camworld.retrieval.frustum import FrustumParams, frustum_overlap
from camworld.retrieval import strategies as _strategies  # noqa: F401  (registers the paper's and the baselines)
from camworld.retrieval import coverage as _coverage  # noqa: F401,I001  (registers ``coverage``, after them)
from camworld.retrieval.registry import STRATEGIES, retrieve

# The default everywhere a strategy is not named (World, envs, demo, eval's "ours"): the paper's
# FOV rule with non-adjacent selection. On the shipped model it gave the best memory of all
# strategies on every trajectory of `camworld eval memory` (rot180 history PSNR 36.5 dB vs 34.7 for
# `coverage` and 24.9 for `recent`, 32 held-out episodes). With a 48-frame past in memory
# (`--history 48`) it ties `coverage` on rot180 and trails it on walk3m (docs/benchmarks/memory.md).
DEFAULT_STRATEGY = "fov+nonadj"

__all__ = ["STRATEGIES", "DEFAULT_STRATEGY", "retrieve", "fov_overlap", "FovParams", "frustum_overlap", "FrustumParams",
           "covisibility", "visibility"]
