"""Run one try of a task in the current process, its output captured in the try's log file.

Executors call `run_try` in a worker process; it never touches the database itself (a task's
Variable/Connection lookups do, each in a short session of its own) and never raises (except
KeyboardInterrupt, so Ctrl-C still stops an in-process run). Everything the try prints — `print`,
`logging`, warnings, and child processes writing to fd 1/2 — goes to its log file, with the secrets
the task read, and the database password, masked as `***`.
Redirecting fds 1/2 and SIGALRM (for `execution_timeout`) are process-wide, so call it from the main
thread of a process that runs one try at a time; off the main thread there is no in-process timeout.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, cast

from minisched import masking
from minisched.authoring.context import running_with_context, task_context
from minisched.authoring.mapping import MappedOperator
from minisched.authoring.templating import rendered_copy
from minisched.dagfiles.importer import ImportResult, import_dag_file
from minisched.exceptions import FailTask, SkipTask, TaskFailure, TaskTimeout, XComError
from minisched.host import hostname
from minisched.scheduler.executors import fd_output, lease
from minisched.scheduler.executors.base import TryOutcome, TryRequest, TryResult, will_retry
from minisched.scheduler.executors.callbacks import run_callbacks
from minisched.scheduler.executors.log_sink import LogSink, LogWriter
from minisched.scheduler.executors.logs import append_try_record, open_try_record, stamped, write_try_record
from minisched.settings import get_settings, mask_secrets

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator

LOG_FORMAT = "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"
MAX_ERROR_LENGTH = 1000


def timeout_error(seconds: float) -> str:
    return f"Task timed out after {seconds:g}s (execution_timeout)"


class DagFileCache:
    """Imported DAG files of a warm worker, re-imported only when a file's mtime or size changes."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int], ImportResult]] = {}
        self.imports = 0

    def load(self, fileloc: str) -> ImportResult:
        stat = os.stat(fileloc)
        stamp = (stat.st_mtime_ns, stat.st_size)
        entry = self._entries.get(fileloc)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        result = import_dag_file(fileloc)
        self.imports += 1
        self._entries[fileloc] = (stamp, result)
        return result


class _TryError(Exception):
    """The try cannot start (missing DAG, task or file); `detail` goes to the log only."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class _Progress:
    """Whether the task's code has begun: before that, an interrupted try did not start. From then on
    the try's record file stays open (`record_fd`) for its last line."""

    began = False
    record_fd: int | None = None


@dataclass(frozen=True)
class _Ending:
    """How a try ended: its outcome, the one-line error, and whether a retry may help."""

    outcome: TryOutcome
    error: str | None = None
    retry: bool = True
    exception: BaseException | None = None
    skip_task_ids: tuple[str, ...] = ()
    #: (key, value) of every XCom value the try pushed, whatever its outcome.
    xcom: tuple[tuple[str, Any], ...] = ()


def run_try(request: TryRequest, *, dag_cache: DagFileCache | None = None) -> TryResult:
    """Run one try of `request`'s task to its end in this process and say how it went."""
    start_date = datetime.now(UTC)
    started = time.monotonic()
    _register_database_password()
    progress = _Progress()
    try:
        return _run_and_record(request, dag_cache, started, start_date, progress)
    finally:
        if progress.record_fd is not None:
            os.close(progress.record_fd)


def _run_and_record(
    request: TryRequest,
    dag_cache: DagFileCache | None,
    started: float,
    start_date: datetime,
    progress: _Progress,
) -> TryResult:
    try:
        with _captured_output(request.log_path) as log:
            ending = _run_logged(request, dag_cache, log, started, progress)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the log file itself could not be opened or written, or a signal
        if progress.began or isinstance(exc, Exception):
            ending = _Ending("failed", f"Could not run the try: {describe_exception(exc)}")
        else:  # e.g. its worker was stopped while it opened the log or imported the DAG file
            ending = _Ending("not_started", "interrupted before the task began")
    if ending.error is not None:
        ending = replace(ending, error=masking.mask_registered(ending.error))
    result = TryResult(
        ti_id=request.ti_id,
        try_number=request.try_number,
        outcome=ending.outcome,
        start_date=start_date,
        end_date=datetime.now(UTC),
        hostname=hostname(),
        pid=os.getpid(),
        error=ending.error,
        retry=ending.retry,
        skip_task_ids=ending.skip_task_ids,
        xcom=ending.xcom,
    )
    if ending.outcome != "not_started":
        with contextlib.suppress(OSError):
            if progress.record_fd is None:
                write_try_record(request.log_path, _record(result))
            else:
                append_try_record(progress.record_fd, _record(result))
    return result


def _record(result: TryResult) -> dict[str, Any]:
    """How the try ended, for a recovery that finds its result never recorded: with the values it
    pushed (each already held to the XCom size cap), so that recovery stores them with its outcome."""
    return {
        "outcome": result.outcome,
        "start_date": result.start_date.isoformat(),
        "end_date": result.end_date.isoformat(),
        "hostname": result.hostname,
        "pid": result.pid,
        "error": result.error,
        "retry": result.retry,
        "skip_task_ids": list(result.skip_task_ids),
        "xcom": [[key, value] for key, value in result.xcom],
    }


def _run_logged(
    request: TryRequest, dag_cache: DagFileCache | None, log: TextIO, started: float, progress: _Progress
) -> _Ending:
    instance = f" map_index={request.map_index}" if request.map_index >= 0 else ""
    log.write(
        stamped(
            f"Running dag_id={request.dag_id} task_id={request.task_id}{instance} run_id={request.run_id} "
            f"try_number={request.try_number} pid={os.getpid()} host={hostname()} file={request.fileloc}"
        )
    )
    ending = _execute(request, dag_cache, log, progress)
    summary = f"Try finished: outcome={ending.outcome} duration={time.monotonic() - started:.3f}s"
    log.write(stamped(f"{summary} error={ending.error}" if ending.error else summary))
    return ending


def _execute(
    request: TryRequest, dag_cache: DagFileCache | None, log: TextIO, progress: _Progress
) -> _Ending:
    """Airflow's order: render the template fields, on_execute_callback, execute, then the
    success, failure, retry or skipped callback; all with `get_current_context()` set."""
    try:
        task = _load_task(request, dag_cache)
        context = task_context(
            task,
            run_id=request.run_id,
            logical_date=request.logical_date,
            data_interval_start=request.data_interval_start or request.logical_date,
            data_interval_end=request.data_interval_end or request.logical_date,
            try_number=request.try_number,
            conf=request.conf,
            map_index=request.map_index,
        )
    except _TryError as exc:
        log.write(stamped(f"{exc}\n{exc.detail}" if exc.detail else str(exc)))
        return _Ending("failed", mask_secrets(str(exc)))
    if not lease.begin_try():  # none of the task's code (templates, callbacks, execute) has run yet
        log.write(stamped("Not started: the scheduler's lease ran out (it may have been declared dead)"))
        return _Ending("not_started", "the scheduler's lease ran out before the task started")
    try:
        # Written before any of the task's code runs: without it, recovery knows the try never began.
        progress.record_fd = open_try_record(request.log_path, begin=True)
        append_try_record(
            progress.record_fd, {"start_date": datetime.now(UTC).isoformat(), "pid": os.getpid()}
        )
        progress.began = True
        xcom = context["ti"].xcom
        xcom.max_size = get_settings().xcom_max_size
        with running_with_context(context):
            ending = _run_task(task, context, request, log)
            if ending.exception is not None:
                context["exception"] = ending.exception
            run_callbacks(task, _callback_kind(ending, request), context, log)
    finally:
        lease.end_try()
    # A no-op try pushed nothing: its ending stands as it is (`replace` copies a dataclass's fields).
    return replace(ending, xcom=tuple(xcom.pushed.items())) if xcom.pushed else ending


def _run_task(task: BaseOperator, context: dict[str, Any], request: TryRequest, log: TextIO) -> _Ending:
    alarm: _Alarm | None = None
    try:
        if isinstance(task, MappedOperator):  # this instance's own operator, its XCom inputs pulled
            task = task.unmap(request.map_index, context["ti"])
        rendered = rendered_copy(task, context)
        context["task"] = rendered
        run_callbacks(task, "execute", context, log)
        timeout = task.execution_timeout.total_seconds() if task.execution_timeout else request.timeout
        alarm = _Alarm(timeout)
        with alarm:
            value = rendered.execute(context)
        if task.do_xcom_push:
            context["ti"].xcom.push_result(value, multiple_outputs=getattr(task, "multiple_outputs", False))
    except XComError as exc:
        log.write(stamped(f"Task failed: {exc}"))
        return _Ending("failed", str(exc), exception=exc)
    except SkipTask as exc:
        if not (alarm and alarm.fired):
            log.write(stamped(f"Task skipped: {exc}" if str(exc) else "Task skipped"))
            return _Ending("skipped")
        return _failed(exc, log, alarm)
    except FailTask as exc:
        log.write(stamped("Task failed without retrying (FailTask)"))
        return replace(_failed(exc, log, alarm), retry=False)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return _failed(exc, log, alarm)
    if alarm.fired:  # the task swallowed the timeout exception; it still ran too long
        return _Ending("failed", timeout_error(alarm.seconds or 0))
    return _Ending("success", skip_task_ids=tuple(context["ti"].skipped_task_ids))


def _callback_kind(ending: _Ending, request: TryRequest) -> str:
    """Which callback Airflow calls for this ending: a failed try the scheduler will retry (the same
    rule as `transitions.final_state`) calls the retry callback, else the failure callback."""
    if ending.outcome != "failed":
        return ending.outcome
    return "retry" if will_retry(request.try_number, request.max_tries, retry=ending.retry) else "failure"


def _failed(exc: BaseException, log: TextIO, alarm: _Alarm | None) -> _Ending:
    log.write(stamped("Task failed with exception"))
    traceback.print_exception(exc, file=log)
    if alarm is not None and alarm.fired:
        return _Ending("failed", timeout_error(alarm.seconds or 0), exception=exc)
    return _Ending("failed", describe_exception(exc), exception=exc)


def describe_exception(exc: BaseException) -> str:
    """One line: minisched's own failures by message alone, others as `TypeName: message`."""
    message = str(exc).strip()
    if not isinstance(exc, TaskFailure) or not message:
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    line = mask_secrets(" ".join(message.split()))
    return line if len(line) <= MAX_ERROR_LENGTH else line[: MAX_ERROR_LENGTH - 3] + "..."


def _load_task(request: TryRequest, dag_cache: DagFileCache | None) -> BaseOperator:
    fileloc = request.fileloc
    try:
        imported = dag_cache.load(fileloc) if dag_cache is not None else import_dag_file(fileloc)
    except OSError as exc:
        raise _TryError(f"DAG file {fileloc} cannot be read: {exc.strerror or exc}") from None
    if imported.error:
        headline = imported.error.splitlines()[0]
        raise _TryError(f"DAG file failed to import: {headline}", detail=imported.error)
    dag = imported.dags.get(request.dag_id)
    if dag is None:
        raise _TryError(f"DAG {request.dag_id!r} is no longer defined in {fileloc}")
    task = dag.task_dict.get(request.task_id)
    if task is None:
        raise _TryError(f"Task {request.task_id!r} is no longer in DAG {request.dag_id!r} ({fileloc})")
    return task


class _Alarm:
    """Raise TaskTimeout in the main thread after `seconds` (SIGALRM); elsewhere, the executor's
    parent-side deadline is the only limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds if seconds and seconds > 0 else None
        self.fired = False
        self._armed = False
        self._previous: signal._HANDLER = None

    def __enter__(self) -> None:
        if self.seconds is None or threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc_info: object) -> None:
        if not self._armed:
            return
        self._armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous)

    def _on_alarm(self, _signum: int, _frame: FrameType | None) -> None:
        if self._armed:
            self.fired = True
            raise TaskTimeout(timeout_error(self.seconds or 0))


def _register_database_password() -> None:
    """A task that prints the settings or a URL must not show the metadata database's password."""
    masking.register_secret(_password_in(get_settings().db_url))


@functools.lru_cache(maxsize=4)
def _password_in(url: str) -> str | None:
    """Parsed once per URL: this runs before every try."""
    from urllib.parse import unquote, urlsplit

    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        return unquote(password) if password else None
    return None


@contextlib.contextmanager
def _captured_output(log_path: str) -> Iterator[TextIO]:
    """All the try's output, Python-level and fds 1/2 alike, masked (registered secrets, then URL
    passwords) and capped on its way to the private log file (see `log_sink` and `fd_output`)."""
    max_bytes = get_settings().task_log_max_bytes
    sink = LogSink(log_path, max_bytes)
    try:
        output = fd_output.capture()
        batch = _batch
        if batch is not None and batch.output is output:  # redirected already: only the sink changes
            with output.feeding(sink):
                try:
                    yield batch.log
                finally:
                    batch.put_back()
            return
        log = cast(TextIO, LogWriter(output))
        with (
            output.feeding(sink),
            _redirected_fds(log),
            _redirected_streams(log),
            _redirected_logging(log),
        ):
            yield log
    finally:
        sink.close()


class _Batch:
    """The redirections `tries_in_turn` holds for its tries, and the means to put them back."""

    def __init__(self, output: fd_output.Capture, log: TextIO) -> None:
        self.output = output
        self.log = log
        self.level = logging.getLogger().level
        pipe = os.fstat(output.write_fd)
        self._pipe = (pipe.st_dev, pipe.st_ino)

    def put_back(self) -> None:
        """Undo what a try changed (it pointed sys.stdout or a fd elsewhere, set up logging), so that
        the next try's output still reaches its own log: checks, no system call but two fstats."""
        if sys.stdout is not self.log or sys.stderr is not self.log:
            sys.stdout = sys.stderr = self.log
        root = logging.getLogger()
        if root.handlers != [_handler]:
            root.handlers = [_handler]
        if root.level != self.level:
            root.setLevel(self.level)
        if _handler.stream is not self.log:
            _handler.setStream(self.log)
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                stat = os.fstat(fd)
                if (stat.st_dev, stat.st_ino) == self._pipe:
                    continue
            with contextlib.suppress(OSError):
                os.dup2(self.output.write_fd, fd)


_batch: _Batch | None = None


@contextlib.contextmanager
def tries_in_turn() -> Iterator[None]:
    """For a caller that runs tries one after another in this thread (the in-process executor of
    `dags test`): fds 1/2, sys.stdout/stderr and the root logger point at the output capture once for
    all of them, and each try only gets its own log sink. Per try, those redirections cost ~10 system
    calls and a logger cache clear, a tenth of a no-op try; what a try changes of them is put back
    before the next one. Output between two tries is dropped (there is none: the caller runs nothing
    else meanwhile)."""
    global _batch
    if _batch is not None:
        yield
        return
    output = fd_output.capture()
    log = cast(TextIO, LogWriter(output))
    with _redirected_fds(log), _redirected_streams(log), _redirected_logging(log):
        _batch = _Batch(output, log)
        try:
            yield
        finally:
            _batch = None


@contextlib.contextmanager
def _redirected_fds(log: TextIO) -> Iterator[None]:
    """Point fds 1 and 2 at the log, so child processes and C code write there too."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int | None]] = []
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
            except OSError:
                saved.append((fd, None))
            os.dup2(log.fileno(), fd)
        yield
    finally:
        with contextlib.suppress(Exception):
            log.flush()
        for fd, copy in saved:
            with contextlib.suppress(OSError):
                if copy is None:
                    os.close(fd)
                else:
                    os.dup2(copy, fd)
                    os.close(copy)


@contextlib.contextmanager
def _redirected_streams(log: TextIO) -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = log
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter(LOG_FORMAT))


@contextlib.contextmanager
def _redirected_logging(log: TextIO) -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    _handler.setStream(log)
    root.handlers = [_handler]
    root.setLevel(saved_level if 0 < saved_level < logging.INFO else logging.INFO)
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        _handler.setStream(sys.__stderr__ or sys.stderr)
