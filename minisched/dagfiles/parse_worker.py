"""What one forked child of the DAG file processor does: import one DAG file and report it as JSON.

The child runs user code, so it is fenced in before the import: its own process group (the parse server
sets it too, to close the race), death when the server dies, an address-space limit, and a fork guard
that stops any copy the file makes of the child before it runs another line. What it reports is the
serialized form the scheduler stores, never a pickled user object.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

#: Exit code of a copy made by os.fork() at import, stopped by the fork guard.
FORK_COPY_EXIT = 86
_PR_SET_PDEATHSIG = 1


def run_child(paths: Sequence[str], folder: str, *, result_fd: int, memory_limit_mb: int) -> NoReturn:
    """Import `paths` one after the other, reporting each on `result_fd`; never returns (os._exit).

    Messages, one JSON object per line: `{"started": path}`, then `{"done": path, ...}`. A file that
    fails after others ran in this interpreter is reported as `{"again": path}` instead: an earlier file
    may have caused it, so it is parsed again in a child of its own. After any failure the child stops;
    the files it did not start go to a fresh child.
    """
    current = None
    try:
        _fence_in(memory_limit_mb)
        forked = _guard_forks()
        for index, path in enumerate(paths):
            current = path
            _send(result_fd, {"started": path})
            message = parse_file(path, folder, memory_limit_mb=memory_limit_mb)
            if forked:
                message = {
                    "error": f"{path}: called os.fork() at import; a DAG file must not start "
                    "processes when it is imported (the copy was stopped)"
                }
            sys.modules.pop(_module_name(path), None)  # the serialized form is all that is kept
            _flush_std_streams()
            if "error" in message and index > 0:
                _send(result_fd, {"again": path})
                break
            _send(result_fd, {"done": path, **message})
            current = None
            if "error" in message:
                break
    except BaseException as exc:  # nothing may escape into the server's code after fork()
        if current is not None:
            with contextlib.suppress(BaseException):
                detail = "".join(traceback.format_exception(exc)).rstrip()
                _send(
                    result_fd,
                    {"done": current, "error": f"{current}: internal error while importing:\n{detail}"},
                )
    finally:
        os._exit(0)


def _module_name(path: str) -> str:
    from minisched.dagfiles.importer import module_name_for

    return module_name_for(path)


def _send(fd: int, message: dict[str, Any]) -> None:
    _write_all(fd, (json.dumps(message) + "\n").encode())


def parse_file(path: str, folder: str, *, memory_limit_mb: int) -> dict[str, Any]:
    """The message for one file: `{"dags": {dag_id: serialized}}` or `{"error": text}`."""
    from minisched.authoring.serialize import serialize_dag
    from minisched.dagfiles import importer

    try:
        importer.ensure_on_sys_path(folder)
        result = importer.import_dag_file(path, timeout=None)
        if isinstance(result.exception, MemoryError):
            return {"error": memory_message(path, memory_limit_mb, result.error)}
        if result.error is not None:
            return {"error": result.error}
        return {"dags": {dag_id: serialize_dag(dag) for dag_id, dag in result.dags.items()}}
    except MemoryError:
        return {"error": memory_message(path, memory_limit_mb, None)}
    except BaseException as exc:  # KeyboardInterrupt and friends, raised by the file
        return {"error": importer.describe_import_error(path, exc)}


def memory_message(path: str, limit_mb: int, detail: str | None) -> str:
    headline = (
        f"{path}: exceeded the memory limit of {limit_mb} MiB during import; "
        "allocate less at top level, or raise MINISCHED_DAG_FILE_PROCESSOR_MEMORY_LIMIT_MB"
    )
    return f"{headline}\n{detail}" if detail else headline


def _fence_in(memory_limit_mb: int) -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _die_with_parent()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    limit = memory_limit_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


_libc: Any = None


def load_libc() -> None:
    """Linux: load libc for prctl() once, in the parse server, so that no child pays for ctypes."""
    global _libc
    if sys.platform.startswith("linux") and _libc is None:
        import ctypes

        with contextlib.suppress(OSError):
            _libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the parse server dies (e.g. the file killed it)."""
    load_libc()
    if _libc is not None:
        with contextlib.suppress(AttributeError):
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _guard_forks() -> list[bool]:
    """A copy made by os.fork() exits at once; the returned list becomes truthy once that happened."""
    forked: list[bool] = []
    os.register_at_fork(after_in_parent=lambda: forked.append(True), after_in_child=_stop_copy)
    return forked


def _stop_copy() -> None:
    os._exit(FORK_COPY_EXIT)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
