"""Memory retrieval (paper §3.3): pick the k context frames for a target segment from memory poses.

    from camworld.retrieval import retrieve, STRATEGIES, fov_overlap
    idx = retrieve("fov+nonadj", mem_poses, mem_times, target_poses, k=8, rng=np.random.default_rng(0))

Modules: ``fov`` (the paper's FOV-overlap rule), ``strategies`` (the registry, paper strategies and
baselines), ``coverage`` (our greedy view-coverage strategy), ``covis`` (ground-truth co-visibility
from sim depth), ``metrics`` (precision / recall / coverage / redundancy), ``bench`` and ``show``
(CLI: ``camworld bench retrieval``, ``camworld retrieval show``).
"""

from camworld.retrieval.covis import covisibility, visibility
from camworld.retrieval.fov import FovParams, fov_overlap
from camworld.retrieval.strategies import STRATEGIES, retrieve

__all__ = ["STRATEGIES", "retrieve", "fov_overlap", "FovParams", "covisibility", "visibility"]
