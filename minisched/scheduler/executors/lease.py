"""The fence on starting a try: a scheduler's lease, shared with the worker processes it forks.

Invariant: a scheduler whose job another scheduler may have declared dead starts no try.

Argument. A scheduler renews its lease only after a transaction that wrote its heartbeat has
committed, until `m0 + zombie_threshold / 2`, where `m0` is read from the monotonic clock just before
the wall-clock time `w0` that the heartbeat wrote. Another scheduler declares the job dead only once
`latest_heartbeat` (= `w0`) is older than the zombie threshold, that is after `w0 + zombie_threshold`;
and it reaps the job's tries after that. A worker checks the lease right before it runs the task's
code and runs nothing once the lease has run out, which is before `w0 + zombie_threshold / 2`. So
every try a scheduler's workers start, start before any other scheduler can reap it; a try that would
start later is handed back instead (outcome `not_started`, recorded as a withdrawal) and its row is
left to whoever owns it by then. Pauses of any kind (SIGSTOP, a long GC, a swapped-out process, a
prefetched try waiting in a worker's pipe) only make the lease run out sooner, never later. The
argument needs the hosts' wall clocks to agree within `zombie_threshold / 2`.

The lease lives in shared memory (a `multiprocessing` value), so a worker forked by the scheduler reads
the scheduler's latest renewal without any message. A process that never took a lease (tests, `dags
test`, a worker forked by a process without a scheduler loop) is not fenced.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import time
from typing import Any

#: 0.0: no lease in force. Otherwise the monotonic time at which the lease runs out.
_deadline: Any = multiprocessing.RawValue(ctypes.c_double, 0.0)


def renew(until: float) -> None:
    """Hold the lease until the monotonic time `until` (never shortens a lease in force)."""
    _deadline.value = max(_deadline.value, until)


def release() -> None:
    """No lease in force any more: the scheduler loop in this process has ended."""
    _deadline.value = 0.0


def held() -> bool:
    """Whether a try may start now: no lease was ever taken here, or it has not run out."""
    deadline: float = _deadline.value
    return deadline == 0.0 or time.monotonic() < deadline
