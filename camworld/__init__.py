"""camworld: Context-as-Memory world models as environments.

``import camworld`` registers the Gymnasium environments (``ContextAsMemory-v0``, ``CamWorld-v0`` and
the task ids) when gymnasium is installed.
"""

__version__ = "0.1.0"

try:  # registration lives at the edge: the core never needs gymnasium
    import gymnasium as _gym  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:
    try:
        from camworld.envs.registration import register_envs as _register_envs
    except ImportError:  # envs not built yet in a partial checkout
        pass
    else:
        _register_envs()
