"""The local executor: a pool of warm, forked worker processes, one try at a time each.

A worker imports a DAG file once (per change) and runs many tries of it, so a try costs a pipe round
trip, not a process start. Each worker is forked by a small keeper process of its own, so a task's
`os.getppid()` names the keeper, never the scheduler, and a task that kills its parent costs nothing
but the keeper. A worker is a child subreaper: after each try it kills whatever the try left behind.
A try that crashes its worker or outlives its deadline costs only that worker, which is replaced on
demand. The keeper also enforces the scheduler's lease on running tries: once it has run out under
a try, the keeper kills the worker and everything the try started (see `lease`). (A process per try
was measured and rejected: a fork costs ~3-6 ms on a sandboxed kernel, against ~0.5 ms for a whole
no-op try.) Workers die with the scheduler: PR_SET_PDEATHSIG on the
keeper, passed on as SIGTERM, and EOF on their pipe everywhere.

Drive the executor from one long-lived thread (the scheduler loop): Linux delivers the parent-death
signal when the *thread* that forked a worker exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from minisched.scheduler.executors import lease
from minisched.scheduler.executors.base import BaseExecutor, TryRequest, TryResult, TryStarted
from minisched.scheduler.executors.logs import append_log_line
from minisched.scheduler.executors.process_tree import (
    become_subreaper,
    children_of,
    kill_leftovers,
    set_parent_death_signal,
)
from minisched.scheduler.executors.task_runner import DagFileCache, run_try, timeout_error
from minisched.settings import get_settings, is_hidden_from_tasks

STOPPED_ERROR = "Scheduler stopped before the try finished"
#: A busy worker gets its next tries in advance only while its current one is younger than this (s),
#: and at most this many: a try that turns out long delays at most that many tries queued behind it.
PREFETCH_WINDOW = 0.02
PREFETCH_DEPTH = 3
#: A keeper exits with this once it killed its worker because the scheduler's lease ran out.
LEASE_LOST_EXIT = 86
LEASE_LOST_ERROR = (
    "The scheduler's lease ran out while the try ran (the scheduler may have been declared dead): "
    "the try's processes were killed"
)
#: How often (s) a keeper looks again at a lease that has run out, in case it is renewed.
LEASE_RECHECK = 0.5


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    pid: int
    conn: Connection
    #: Readable once the process has exited: a pidfd where the OS has them, else the sentinel.
    exit_fd: int
    request: TryRequest | None = None
    started_at: datetime | None = None
    deadline: float | None = None
    stopping: bool = False
    #: Its keeper died (a task killed its parent) but the worker may live on, serving its pipe as
    #: before: from then on only the pipe's EOF says that the worker is gone. Nothing watches its
    #: tries' lease any more, so it gets no new try and is let go once its pipe is empty.
    orphaned: bool = False
    #: The next tries, already in the worker's pipe: each starts the moment the one before ends.
    prefetched: deque[TryRequest] = field(default_factory=deque)

    def send_signal(self, signum: int) -> None:
        """To the keeper through multiprocessing, which never signals a pid it has already reaped;
        SIGKILL (and anything once the keeper is gone) also to its process group, which holds the
        worker and its try's processes (a group id is not reused while a member lives)."""
        if signum == signal.SIGKILL or self.orphaned:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)
        with contextlib.suppress(ProcessLookupError, ValueError):
            if signum == signal.SIGKILL:
                self.process.kill()
            else:
                self.process.terminate()


class LocalExecutor(BaseExecutor):
    name = "local"
    #: A reused worker runs try after try; otherwise it exits after its first (SequentialExecutor).
    reuse_workers = True
    #: Beyond `timeout`, how long the parent waits before SIGKILLing a worker whose in-process timeout
    #: did not work; longer than a BashOperator's own kill grace, so the worker normally reports first.
    deadline_grace = 10.0
    #: In `stop`, how long a SIGTERMed worker gets to fail its try cleanly (killing child processes).
    terminate_grace = 6.0

    def __init__(self, parallelism: int, queue_depth: int | None = None) -> None:
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, got {parallelism}")
        super().__init__(parallelism, queue_depth)
        self._context = get_context("fork")
        self._workers: list[_Worker] = []
        self._exiting: list[BaseProcess] = []
        self._pending: deque[TryRequest] = deque()
        self._undelivered: list[TryResult] = []  # tries that failed before reaching a worker
        self._never_started: list[TryRequest] = []  # taken back at stop: see withdraw_pending
        self._stopped = False
        _live_executors.add(self)

    def start(self) -> None:
        """Workers are forked on demand; this only re-opens an executor after `stop`."""
        self._stopped = False
        _live_executors.add(self)

    def submit(self, tries: Sequence[TryRequest]) -> None:
        if self._stopped:
            raise RuntimeError(f"the {self.name} executor is stopped; call start() first")
        self._pending.extend(tries)
        self._dispatch()

    def poll(self, timeout: float = 0.0) -> list[TryResult]:
        results, self._undelivered = self._undelivered, []
        results += self._collect(0.0 if results else timeout)
        self._dispatch()
        return results

    def pump(self) -> None:
        if self._pending and not self._stopped:
            self._undelivered += self._collect(0.0)
            self._dispatch()

    @property
    def running(self) -> int:
        prefetched = sum(len(worker.prefetched) for worker in self._workers)
        return len(self._pending) + len(self._busy()) + len(self._undelivered) + prefetched

    def withdraw_pending(self) -> list[TryRequest]:
        withdrawn = [*self._never_started, *self._pending]
        self._never_started = []
        self._pending.clear()
        return withdrawn

    @property
    def worker_pids(self) -> list[int]:
        """The processes that run the tries (each the child of its keeper); for diagnostics."""
        return [next(iter(children_of(worker.pid)), worker.pid) for worker in self._workers]

    def stop(self, grace: float) -> list[TryResult]:
        """Wait `grace` for busy workers, then SIGTERM them (their try fails, child processes are
        killed), then SIGKILL whichever is left; idle workers exit on pipe EOF.

        Tries that never started are not failed: `withdraw_pending` hands them back afterwards.
        """
        self._stopped = True
        self._never_started += self._pending
        results = self._undelivered
        self._pending.clear()
        self._undelivered = []
        results += self._wait_for_busy(time.monotonic() + grace)
        if self._busy():
            for worker in self._busy():
                worker.stopping = True
                worker.send_signal(signal.SIGTERM)
            results += self._wait_for_busy(time.monotonic() + self.terminate_grace)
        for worker in self._busy():
            assert worker.request is not None
            results.append(
                self._failed(worker.request, STOPPED_ERROR, pid=worker.pid, since=worker.started_at)
            )
            self._retire(worker, kill=True)
        # Tries that were waiting in a stopped worker's pipe never started.
        results += self._undelivered
        self._never_started += self._pending
        self._undelivered = []
        self._pending.clear()
        self._close_idle()
        _live_executors.discard(self)
        return results

    # -- dispatching -------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._pending and not self._stopped:
            worker = self._idle_worker()
            if worker is not None:
                request = self._pending.popleft()
                if not self._send(worker, request):
                    self._pending.appendleft(request)
            elif len(self._workers) < self.parallelism:
                request = self._pending.popleft()
                try:
                    self._spawn(request)
                except OSError as exc:  # fork failed: out of memory or processes
                    error = f"Could not start a worker process: {exc}"
                    self._undelivered.append(self._failed(request, error, pid=0))
            elif (worker := self._prefetch_target()) is not None:
                request = self._pending.popleft()
                try:
                    worker.conn.send(request)
                except OSError:  # it is dying; _service will notice
                    self._pending.appendleft(request)
                    return
                worker.prefetched.append(request)
            else:
                return

    def _prefetch_target(self) -> _Worker | None:
        """A busy worker whose try only just began (so is likely short): give it its next try now.

        Its pipe then holds the next request: no round trip through the scheduler's loop between two
        short tries, and the write does not wake a sleeping worker. A try that turns out long delays
        at most the PREFETCH_DEPTH tries queued behind it.
        """
        if not self.reuse_workers:
            return None
        now = datetime.now(UTC)
        for worker in self._workers:
            if (
                worker.request is not None
                and len(worker.prefetched) < PREFETCH_DEPTH
                and not worker.stopping
                and not worker.orphaned
                and worker.started_at is not None
                and (now - worker.started_at).total_seconds() < PREFETCH_WINDOW
            ):
                return worker
        return None

    def _idle_worker(self) -> _Worker | None:
        if not self.reuse_workers:
            return None
        return next((w for w in self._workers if w.request is None and not w.orphaned), None)

    def _send(self, worker: _Worker, request: TryRequest) -> bool:
        try:
            worker.conn.send(request)
        except OSError:  # it died while idle
            self._retire(worker, kill=True)
            return False
        self._assign(worker, request)
        return True

    def _assign(self, worker: _Worker, request: TryRequest) -> None:
        worker.request = request
        worker.started_at = datetime.now(UTC)
        self._started_events.append(TryStarted.of(request, worker.started_at, worker.pid))
        worker.deadline = (
            time.monotonic() + request.timeout + self.deadline_grace if request.timeout else None
        )

    def _spawn(self, first: TryRequest) -> None:
        """Fork a worker that starts on `first` right away, saving a round trip."""
        parent_conn, child_conn = self._context.Pipe()
        inherited = [parent_conn, *(worker.conn for worker in self._workers)]
        inherited_fds = [w.exit_fd for w in self._workers if w.exit_fd != w.process.sentinel]
        process = self._context.Process(
            target=_keeper_main,
            kwargs={
                "conn": child_conn,
                "inherited": inherited,
                "inherited_fds": inherited_fds,
                "parent_pid": os.getpid(),
                "first": first,
                "reuse": self.reuse_workers,
            },
            name=f"minisched-{self.name}-worker",
        )
        try:
            process.start()
        except BaseException:
            parent_conn.close()
            raise
        finally:
            child_conn.close()
        worker = _Worker(process=process, pid=process.pid or 0, conn=parent_conn, exit_fd=_exit_fd(process))
        self._workers.append(worker)
        self._assign(worker, first)

    # -- collecting --------------------------------------------------------------------

    def _collect(self, timeout: float) -> list[TryResult]:
        self._reap_exiting()
        handles: dict[Connection | int, _Worker] = {}
        for worker in self._workers:
            handles[worker.conn] = worker
            if worker.exit_fd >= 0:
                handles[worker.exit_fd] = worker
        if not handles:
            if timeout > 0:
                time.sleep(timeout)
            return []
        ready = wait(list(handles), timeout=self._until_deadline(timeout))
        results: list[TryResult] = []
        for worker in dict.fromkeys(handles[handle] for handle in ready):  # type: ignore[index]
            result = self._service(worker)
            if result is not None:
                results.append(result)
        return results + self._expire_deadlines()

    def _until_deadline(self, timeout: float) -> float:
        deadlines = [worker.deadline for worker in self._workers if worker.deadline is not None]
        if not deadlines:
            return timeout
        return max(0.0, min(timeout, min(deadlines) - time.monotonic()))

    def _service(self, worker: _Worker) -> TryResult | None:
        """Read the worker's result, or notice its death and fail the try it was running."""
        try:
            if worker.conn.poll():
                return self._received(worker, worker.conn.recv())
        except (EOFError, OSError):
            pass
        else:
            if worker.orphaned or worker.process.is_alive():
                return None
            # The keeper is gone (a task killed it), the worker may not be: it serves on, and its
            # pipe's EOF now says when it is gone.
            worker.orphaned = True
            _close_exit_fd(worker)
            if worker.request is None:  # idle: let it go now (it exits on the pipe's EOF)
                self._release(worker)
            return None
        request, started_at = worker.request, worker.started_at
        exitcode = self._retire(worker, kill=False)
        if request is None:
            return None
        error = STOPPED_ERROR if worker.stopping else worker_died_error(exitcode)
        return self._failed(request, error, pid=worker.pid, since=started_at)

    def _received(self, worker: _Worker, result: TryResult) -> TryResult:
        if worker.stopping and worker.request is not None and result.outcome == "failed":
            append_log_line(worker.request.log_path, f"Try failed: {STOPPED_ERROR}")
            result = replace(result, error=STOPPED_ERROR)
        worker.request = worker.started_at = worker.deadline = None
        if worker.prefetched:
            if worker.stopping:  # it exits after this try and never reads the next ones
                self._never_started += worker.prefetched
                worker.prefetched.clear()
            else:
                self._assign(worker, worker.prefetched.popleft())
        if worker.stopping or not self.reuse_workers or (worker.orphaned and worker.request is None):
            self._release(worker)
        return result

    def _expire_deadlines(self) -> list[TryResult]:
        now = time.monotonic()
        results = []
        for worker in [w for w in self._workers if w.deadline is not None and w.deadline <= now]:
            request = worker.request
            assert request is not None
            error = timeout_error(request.timeout or 0)
            results.append(self._failed(request, error, pid=worker.pid, since=worker.started_at))
            self._retire(worker, kill=True)
        return results

    def _busy(self) -> list[_Worker]:
        return [worker for worker in self._workers if worker.request is not None]

    def _wait_for_busy(self, deadline: float) -> list[TryResult]:
        results: list[TryResult] = []
        while self._busy() and (remaining := deadline - time.monotonic()) > 0:
            results += self._collect(remaining)
        return results

    def _failed(
        self, request: TryRequest, error: str, *, pid: int, since: datetime | None = None
    ) -> TryResult:
        append_log_line(request.log_path, f"Try failed: {error}")
        return TryResult.failed(request.ti_id, request.try_number, error, pid=pid, start_date=since)

    # -- worker lifecycle --------------------------------------------------------------

    def _release(self, worker: _Worker) -> None:
        """Let a worker that is exiting by itself go; it is reaped later without blocking."""
        self._workers.remove(worker)
        worker.conn.close()
        _close_exit_fd(worker)
        self._exiting.append(worker.process)

    def _retire(self, worker: _Worker, *, kill: bool) -> int | None:
        """Drop a worker from the pool and reap it (SIGKILL if `kill` or if it lingers); its exit code.

        A try still waiting in its pipe never started: it goes back to the front of the queue.
        """
        self._pending.extendleft(reversed(worker.prefetched))
        worker.prefetched.clear()
        if worker in self._workers:
            self._workers.remove(worker)
        worker.conn.close()
        if kill:
            worker.send_signal(signal.SIGKILL)
        worker.process.join(None if kill else 1.0)
        if worker.process.exitcode is None:
            worker.send_signal(signal.SIGKILL)
            worker.process.join()
        exitcode = worker.process.exitcode
        _close_exit_fd(worker)
        worker.process.close()
        return exitcode

    def _reap_exiting(self) -> None:
        for process in [p for p in self._exiting if not p.is_alive()]:
            self._exiting.remove(process)
            process.close()

    def _close_idle(self) -> None:
        """Idle workers exit on pipe EOF; SIGKILL whichever has not within a second."""
        for worker in self._workers:
            worker.conn.close()
        deadline = time.monotonic() + 1.0
        for process in [worker.process for worker in self._workers] + self._exiting:
            process.join(max(0.0, deadline - time.monotonic()))
        for worker in list(self._workers):
            self._retire(worker, kill=True)
        for process in self._exiting:
            if process.exitcode is None:
                process.kill()
                process.join()
            process.close()
        self._exiting.clear()

    def _kill_all(self) -> None:
        for worker in list(self._workers):
            self._retire(worker, kill=True)
        for process in self._exiting:
            process.kill()
        self._close_idle()


def worker_died_error(exitcode: int | None) -> str:
    if exitcode == LEASE_LOST_EXIT:
        return LEASE_LOST_ERROR
    if exitcode is None:
        return "Worker process died (exit code unknown)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"Worker process died with exit code {exitcode} (signal {name})"
    return f"Worker process died with exit code {exitcode}"


def _exit_fd(process: BaseProcess) -> int:
    """A pidfd sees the exit even when a grandchild holds copies of the worker's pipes."""
    if hasattr(os, "pidfd_open") and process.pid:
        with contextlib.suppress(OSError):
            return os.pidfd_open(process.pid)
    return process.sentinel


def _close_exit_fd(worker: _Worker) -> None:
    if worker.exit_fd >= 0 and worker.exit_fd != worker.process.sentinel:
        with contextlib.suppress(OSError):
            os.close(worker.exit_fd)
    worker.exit_fd = -1


# -- the worker process ----------------------------------------------------------------


class WorkerTerminated(BaseException):
    """Raised in a worker on SIGTERM: its try fails (a BashOperator kills its process group), it exits."""


_terminating = False


def _keeper_main(
    *,
    conn: Connection,
    inherited: list[Connection],
    inherited_fds: list[int],
    parent_pid: int,
    first: TryRequest,
    reuse: bool,
) -> None:
    """The worker's parent, so that `os.getppid()` in a task names this process, never the scheduler.

    It forks the worker, passes SIGTERM on to it, kills it if the scheduler's lease runs out under a
    try, kills whatever the worker's tries left behind once it is gone, and exits the way the worker
    exited, so the scheduler sees the worker's exit code. If a task kills it, the worker goes on with
    its try and the ones after, reporting on its pipe as before (see `_Worker.orphaned`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scheduler's to handle
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGALRM):
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(ValueError, OSError):  # the scheduler's wakeup pipe is not ours
        signal.set_wakeup_fd(-1)
    # Its own process group, which the worker and its tries share: one killpg reaches all of them.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    for other in inherited:  # so siblings and the parent see EOF when they should
        other.close()
    for fd in inherited_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    mark = lease.TryMark()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            lease.supervised_by(mark)
            _worker_main(conn=conn, first=first, reuse=reuse)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    conn.close()
    # Orphans of the worker's tries come here once the worker is gone, to be killed.
    become_subreaper()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os.kill(pid, signal.SIGTERM))
    exitcode = _supervise(pid, mark)
    kill_leftovers()
    _exit_like(exitcode)


def _supervise(pid: int, mark: lease.TryMark) -> int:
    """Wait for the worker to exit, and return its exit code; but SIGKILL it (and so its try) once the
    scheduler's lease has run out while a try runs, then return LEASE_LOST_EXIT (see `lease`).

    The keeper sleeps until the lease's deadline (renewals only move it later), so it wakes about
    once per lease, not per try."""
    exit_fd = _pidfd(pid)
    while True:
        if lease.expired(mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return LEASE_LOST_EXIT
        left = lease.remaining()
        timeout = None if left is None else left or LEASE_RECHECK
        if exit_fd is None:  # no pidfd: poll
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(min(timeout or LEASE_RECHECK, LEASE_RECHECK))
        elif select.select([exit_fd], [], [], timeout)[0]:
            _, status = os.waitpid(pid, 0)
            os.close(exit_fd)
            return os.waitstatus_to_exitcode(status)


def _pidfd(pid: int) -> int | None:
    if hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):
            return os.pidfd_open(pid)
    return None


def _exit_like(exitcode: int) -> None:
    if exitcode < 0:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP keep their default
            signal.signal(-exitcode, signal.SIG_DFL)
        os.kill(os.getpid(), -exitcode)
    os._exit(exitcode if exitcode >= 0 else 1)


def _worker_main(*, conn: Connection, first: TryRequest, reuse: bool) -> None:
    _become_worker()
    dag_cache = DagFileCache()
    request: TryRequest | None = first
    try:
        while request is not None:
            result = run_try(request, dag_cache=dag_cache)
            kill_leftovers()  # whatever the try started, detached grandchildren included
            conn.send(result)
            if not reuse or _terminating:
                return
            request = conn.recv()
    except (EOFError, OSError, WorkerTerminated):
        return


def _become_worker() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    # What a try leaves behind (a daemon, a `setsid cmd &`) is re-parented here, to be killed.
    become_subreaper()
    get_settings()  # resolved before the environment loses minisched's credentials
    for name in [name for name in os.environ if is_hidden_from_tasks(name)]:
        del os.environ[name]


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    global _terminating
    _terminating = True
    raise WorkerTerminated("the worker process received SIGTERM")


# -- scheduler exit ----------------------------------------------------------------------

_live_executors: weakref.WeakSet[LocalExecutor] = weakref.WeakSet()


@atexit.register  # registered after multiprocessing's own hook, so it runs before it joins children
def _kill_workers_at_exit() -> None:
    for executor in list(_live_executors):
        executor._kill_all()
