"""camworld: Context-as-Memory world models as environments.

``import camworld`` registers the Gymnasium environments (``ContextAsMemory-v0``, ``CamWorld-v0`` and
the task ids), lazily: the ids are a small table with string entry points
(``camworld.envs.registration``), so no env module is imported until an env is made, and importing
the core (``camworld.world``, ``camworld.geometry``, ...) never imports gymnasium. If gymnasium is
already imported the ids are registered at once; otherwise as soon as it is imported.
"""

__version__ = "0.1.0"

import importlib.util as _util
import sys as _sys

from camworld import threads as _threads  # noqa: F401  (its at-fork hook must be in place before workers fork)


def _register():
    from camworld.envs.registration import register_envs

    register_envs()


class _RegisterWhenGymnasiumLoads:
    """A one-shot import hook: lets gymnasium import as usual, then registers the ids."""

    def find_spec(self, name, path=None, target=None):
        if name != "gymnasium":
            return None
        _sys.meta_path.remove(self)
        spec = _util.find_spec(name)           # the real one (this hook is gone, so no recursion)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register()

        spec.loader.exec_module = exec_then_register
        return spec


if "gymnasium" in _sys.modules:
    _register()
elif not any(isinstance(f, _RegisterWhenGymnasiumLoads) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _RegisterWhenGymnasiumLoads())
