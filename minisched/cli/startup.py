"""Importing a command's heavy modules (SQLAlchemy, the models, the scheduler) without the cyclic GC,
and without the standard modules SQLAlchemy imports only for features a command does not use.

Those imports allocate some 300,000 long-lived objects; the collector, triggered every 700
allocations, traverses them again and again for nothing (module state is never garbage): about a
tenth of a small `dags test`'s CPU. Afterwards they are frozen, so later collections skip them too.

SQLAlchemy imports `asyncio` (its async engines) and `importlib.metadata` (dialects registered as
entry points) when it is imported: with `ssl`, `email`, `zipfile` and more, a tenth of the imports of
`dags test`, which uses neither. Both are deferred: in their place goes a stand-in module that imports
the real one the first time anything (SQLAlchemy, or a task's code) reads one of its attributes, and
from then on reads through to it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import Any

#: Modules SQLAlchemy imports but uses only on paths a command does not take.
DEFERRED = ("asyncio", "importlib.metadata")


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """Pause the cyclic GC for the block, then freeze what it left alive (an already paused GC stays
    paused); `DEFERRED` modules not imported yet are deferred."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for name in DEFERRED:
            defer_import(name)
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def defer_import(name: str) -> None:
    """Put a stand-in for module `name` in `sys.modules`, unless it is imported already: `import name`
    gives the stand-in, which imports the real module on the first read of an attribute it lacks.
    Importing a submodule through it works too (it has the package's `__path__`)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = types.ModuleType(name)
    stand_in.__spec__ = spec
    stand_in.__file__ = spec.origin
    if spec.submodule_search_locations is not None:
        stand_in.__path__ = list(spec.submodule_search_locations)

    def load(attribute: str) -> Any:
        real = sys.modules.get(name)
        if real is None or real is stand_in:
            real = _import_real(name)
        stand_in.__dict__.update(real.__dict__)  # later reads find the attributes directly
        if "__getattr__" not in real.__dict__:
            del stand_in.__dict__["__getattr__"]
        _set_on_parent(name, real)
        return getattr(real, attribute)

    stand_in.__dict__["__getattr__"] = load
    sys.modules[name] = stand_in
    _set_on_parent(name, stand_in)
    if name == "asyncio":
        # Read by SQLAlchemy when imported; its home module is small and imports nothing heavy. The
        # real asyncio, once loaded, exports this same function.
        stand_in.__dict__["iscoroutine"] = importlib.import_module("asyncio.coroutines").iscoroutine


def _import_real(name: str) -> types.ModuleType:
    """Import module `name` for real, as the import system would, except that its submodules already
    imported through the stand-in are bound in it first (`from .coroutines import *` in asyncio's
    `__init__` needs the name `coroutines`, which the import system binds only on a submodule's
    first import)."""
    sys.modules.pop(name, None)
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    real = importlib.util.module_from_spec(spec)
    prefix = name + "."
    for key, module in list(sys.modules.items()):
        if key.startswith(prefix) and "." not in key[len(prefix) :]:
            setattr(real, key[len(prefix) :], module)
    sys.modules[name] = real
    try:
        spec.loader.exec_module(real)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return sys.modules[name]


def _set_on_parent(name: str, module: types.ModuleType) -> None:
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, module)
