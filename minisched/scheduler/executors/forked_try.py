"""One try in one freshly forked process, watched from the parent: what a remote worker runs per try.

The parent has the DAG file imported already (a warm cache), so the fork costs a few milliseconds and
the child imports nothing. The child is the leader of its own process group: a try past its deadline
is killed with everything it started. It behaves like a local executor's worker process otherwise
(SIGTERM fails the try cleanly; it gets SIGTERM when its parent dies).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime

from minisched.host import hostname
from minisched.scheduler.executors import lease
from minisched.scheduler.executors.base import TryRequest, TryResult
from minisched.scheduler.executors.local import LEASE_LOST_ERROR, _become_worker, worker_died_error
from minisched.scheduler.executors.logs import append_log_line
from minisched.scheduler.executors.process_tree import kill_leftovers, set_parent_death_signal
from minisched.scheduler.executors.task_runner import DagFileCache, run_try, timeout_error

#: Beyond the task's timeout, how long the parent waits for the child's own (in-process) timeout.
KILL_GRACE = 10.0


def run_forked(
    request: TryRequest,
    *,
    dag_cache: DagFileCache,
    while_waiting: Callable[[], None] = lambda: None,
    interval: float = 1.0,
) -> TryResult:
    """Run `request` in a child process to its end; `while_waiting` is called every `interval` seconds
    meanwhile (e.g. to ship the log so far)."""
    read_fd, write_fd = os.pipe()
    parent_pid = os.getpid()
    started = time.time()
    mark = lease.TryMark()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child leaves through os._exit, which coverage cannot see
        os.close(read_fd)
        lease.supervised_by(mark)
        _child(request, dag_cache, write_fd, parent_pid)
    os.close(write_fd)
    try:
        return _watch(
            request,
            pid,
            read_fd=read_fd,
            mark=mark,
            started=started,
            while_waiting=while_waiting,
            interval=interval,
        )
    finally:
        os.close(read_fd)


def _child(request: TryRequest, dag_cache: DagFileCache, write_fd: int, parent_pid: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle
        for signum in (signal.SIGHUP, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(signum, signal.SIG_DFL)
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        os.setpgid(0, 0)
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            return
        _become_worker()
        result = run_try(request, dag_cache=dag_cache)
        kill_leftovers()  # whatever the try started, detached grandchildren included
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(pickle.dumps(result))
        code = 0
    finally:
        os._exit(code)


def _watch(
    request: TryRequest,
    pid: int,
    *,
    read_fd: int,
    mark: lease.TryMark,
    started: float,
    while_waiting: Callable[[], None],
    interval: float,
) -> TryResult:
    """Wait for the child's result; kill its process group past the try's deadline, or once the
    worker's lease has run out while the task's code runs (see `lease`)."""
    deadline = time.monotonic() + request.timeout + KILL_GRACE if request.timeout else None
    received = bytearray()
    next_call = time.monotonic() + interval
    while True:
        if lease.expired(mark):
            _kill_group(pid)
            os.waitpid(pid, 0)
            return _failed(request, LEASE_LOST_ERROR, pid, started)
        now = time.monotonic()
        wait = max(0.0, min(next_call, deadline or next_call) - now)
        left = lease.remaining()
        if left is not None:
            wait = min(wait, left or interval)
        ready, _, _ = select.select([read_fd], [], [], wait)
        if ready:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            received += chunk
            continue
        if deadline is not None and time.monotonic() >= deadline:
            _kill_group(pid)
            os.waitpid(pid, 0)
            return _failed(request, timeout_error(request.timeout or 0), pid, started)
        if time.monotonic() >= next_call:
            while_waiting()
            next_call = time.monotonic() + interval
    _, status = os.waitpid(pid, 0)
    if received:
        result: TryResult = pickle.loads(bytes(received))
        return result
    return _failed(request, worker_died_error(os.waitstatus_to_exitcode(status)), pid, started)


def _failed(request: TryRequest, error: str, pid: int, started: float) -> TryResult:
    append_log_line(request.log_path, f"Try failed: {error}")
    return TryResult(
        ti_id=request.ti_id,
        try_number=request.try_number,
        outcome="failed",
        start_date=datetime.fromtimestamp(started, UTC),
        end_date=datetime.now(UTC),
        hostname=hostname(),
        pid=pid,
        error=error,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
