"""Importing a command's heavy modules (SQLAlchemy, the models, the scheduler) without the cyclic GC.

Those imports allocate some 300,000 long-lived objects; the collector, triggered every 700
allocations, traverses them again and again for nothing (module state is never garbage): about a
tenth of a small `dags test`'s CPU. Afterwards they are frozen, so later collections skip them too.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """Pause the cyclic GC for the block, then freeze what it left alive (an already paused GC stays
    paused)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
