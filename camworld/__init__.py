"""camworld: Context-as-Memory world models as environments.

``import camworld`` registers the Gymnasium environments (``ContextAsMemory-v0``, ``CamWorld-v0`` and
the task ids) when gymnasium is installed.
"""

__version__ = "0.1.0"

from camworld import threads as _threads  # noqa: F401,E402  (its at-fork hook must be in place before workers fork)

try:  # registration lives at the edge: the core never needs gymnasium
    import gymnasium as _gym  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:  # a failing envs import is a real error: let it surface instead of leaving the ids unregistered
    from camworld.envs.registration import register_envs as _register_envs

    _register_envs()
