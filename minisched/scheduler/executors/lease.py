"""The fence on tries: a scheduler's lease, shared with the worker processes it forks.

Invariant: no try of a job that another job may have declared dead is running, nor starts.

Argument. A scheduler renews its lease only after a transaction that wrote its heartbeat has
committed, until `m0 + zombie_threshold / 2`, where `m0` is read from the monotonic clock just before
the wall-clock time `w0` that the heartbeat wrote. Another scheduler declares the job dead only once
`latest_heartbeat` (= `w0`) is older than the zombie threshold, that is after `w0 + zombie_threshold`;
and it reaps the job's tries after that. So the lease runs out at least `zombie_threshold / 2` before
anyone may reap, and two things happen by then:

- Start. A worker checks the lease right before it runs the task's code (`begin_try`) and runs
  nothing once the lease has run out. A try that would start later is handed back instead (outcome
  `not_started`, recorded as a withdrawal) and its row is left to whoever owns it by then.
- Run. The try's supervisor (the local executor's keeper, a Celery pool process) watches the lease
  while the try runs, without any help from the scheduler (which may be the one stopped). Once the
  lease has run out and was not renewed, it SIGKILLs the try's whole process tree (`expired`): at
  `m0 + zombie_threshold / 2`, plus the time the supervisor takes to wake up and kill, which is the
  whole margin of `zombie_threshold / 2` before the earliest reap. The killed try reports nothing; its
  supervisor's exit says "lease ran out", which its scheduler records only if the try is still its
  own (the compare-and-set of `transitions.finish`): the reaper's decision stands.

`begin_try` marks the try running *before* it checks the lease, and the supervisor reads the mark
only after the lease has run out: a try that passed the check is always seen and killed.

Pauses of any kind (SIGSTOP, a long GC, a swapped-out process, a prefetched try waiting in a worker's
pipe) only make the lease run out sooner, never later. The argument needs the hosts' wall clocks to
agree within `zombie_threshold / 2` and the supervisor not to be stopped itself for that long. A
database outage longer than half the threshold therefore kills the running tries: past that point
another scheduler could reap them the moment the database is back.

The lease lives in shared memory (an anonymous shared mapping holding one double), so a worker forked
by the scheduler reads the scheduler's latest renewal without any message. A process that never took a
lease (tests, `dags test`, a worker forked by a process without a scheduler loop) is not fenced.
"""

from __future__ import annotations

import mmap
import struct
import time

_DOUBLE = struct.Struct("d")
#: 0.0: no lease in force. Otherwise the monotonic time at which the lease runs out. An anonymous
#: mapping is shared with the processes forked afterwards, as a `multiprocessing.RawValue` was (which
#: cost every command that imports this module ctypes, multiprocessing and ~40 ms of CPU).
_memory = mmap.mmap(-1, _DOUBLE.size)


def _deadline() -> float:
    value: float = _DOUBLE.unpack_from(_memory)[0]
    return value


def renew(until: float) -> None:
    """Hold the lease until the monotonic time `until` (never shortens a lease in force)."""
    _DOUBLE.pack_into(_memory, 0, max(_deadline(), until))


def release() -> None:
    """No lease in force any more: the scheduler loop in this process has ended."""
    _DOUBLE.pack_into(_memory, 0, 0.0)


def held() -> bool:
    """Whether a try may start now: no lease was ever taken here, or it has not run out."""
    deadline = _deadline()
    return deadline == 0.0 or time.monotonic() < deadline


def remaining() -> float | None:
    """Seconds until the lease runs out (0.0 once it has); None when no lease is in force."""
    deadline = _deadline()
    return None if deadline == 0.0 else max(0.0, deadline - time.monotonic())


class TryMark:
    """One byte of memory shared by a supervisor and the process it forks to run tries: 1 while the
    task's code of a try runs there. Create it before the fork."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 1)

    @property
    def running(self) -> bool:
        return self._memory[0] == 1

    def set(self, running: bool) -> None:
        self._memory[0] = 1 if running else 0


#: In a process that runs tries under a supervisor: the mark that supervisor reads.
_mark: TryMark | None = None


def supervised_by(mark: TryMark) -> None:
    """Called in the try-running process right after the fork: `begin_try` sets `mark`."""
    global _mark
    _mark = mark


def begin_try() -> bool:
    """Right before a try's task code runs: mark it running, then check the lease (this order: see
    the module's docstring). False (and no mark) if the lease has run out: start nothing."""
    if _mark is not None:
        _mark.set(True)
    if held():
        return True
    end_try()
    return False


def end_try() -> None:
    """The try's task code is over: a lease running out no longer concerns it."""
    if _mark is not None:
        _mark.set(False)


def expired(mark: TryMark | None) -> bool:
    """For a supervisor: the lease has run out while a try runs (or, without a mark, at all)."""
    left = remaining()
    return left == 0.0 and (mark is None or mark.running)
