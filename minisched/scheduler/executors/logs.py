"""Where a try's log file and record live, and how minisched writes its own lines into the log.

Shared by the worker that runs the try, the scheduler that fails a try from outside (a dead worker,
a dead scheduler's orphans), and `tasks logs`, which reads the file back.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO


def log_path_for(
    logs_folder: str | os.PathLike[str],
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    *,
    map_index: int = -1,
) -> Path:
    """`<logs>/dag_id=<d>/run_id=<r>/task_id=<t>/attempt=<n>.log`; run ids keep their ':' and '+'.
    A mapped instance's logs go one folder deeper, in `map_index=<i>/` (Airflow's layout)."""
    # One string joined, one Path parsed: the loop computes this for every try it hands out.
    folder = os.path.join(
        logs_folder,
        f"dag_id={_path_part(dag_id)}",
        f"run_id={_path_part(run_id)}",
        f"task_id={_path_part(task_id)}",
    )
    if map_index >= 0:
        folder = os.path.join(folder, f"map_index={map_index}")
    return Path(folder, f"attempt={try_number}.log")


def _path_part(value: str) -> str:
    return value.replace(os.sep, "_").replace("\0", "_")


def stamped(message: str) -> str:
    """`message` as one minisched line of a try's log: timestamped, newline-terminated."""
    return f"[{datetime.now(UTC).isoformat(timespec='milliseconds')}] minisched: {message}\n"


def append_log_line(log_path: str | os.PathLike[str], message: str) -> None:
    """Add a minisched line to a try's log from outside the try (e.g. the worker died); best effort."""
    with contextlib.suppress(OSError), open_log(log_path) as log:
        log.write(stamped(message).encode("utf-8", "backslashreplace"))


def open_log(log_path: str | os.PathLike[str]) -> BinaryIO:
    """Open a try's log for appending. Whatever the umask, the file is 0600 and the
    folders made for it 0700: a log holds what the task printed, secrets included."""
    return os.fdopen(open_log_fd(log_path), "ab")


def open_log_fd(log_path: str | os.PathLike[str]) -> int:
    """`open_log`, as a bare file descriptor."""
    return _open_private(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def _open_private(path: str | os.PathLike[str], flags: int) -> int:
    """`os.open(path, flags, 0o600)`, making the missing folders first only when it says they are
    missing: a warm worker opens two files per try, and probing the folders before each cost stats."""
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        _make_private_dirs(os.path.dirname(os.fspath(path)))
        return os.open(path, flags, 0o600)


def _make_private_dirs(folder: str) -> None:
    """Make `folder` and its missing parents, each 0700 (Path.mkdir(parents=True) gives the parents the
    umask's default mode). mkdir first, parents only when it says they are missing: a try's folder is
    new (one mkdir), its run's folder usually is not (no stat to find that out)."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:  # made meanwhile by another worker
        return
    except FileNotFoundError:
        parent = os.path.dirname(folder)
        if not parent or parent == folder:
            raise
        _make_private_dirs(parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)


def record_path_for(log_path: str | os.PathLike[str]) -> Path:
    """The try's record beside its log: `attempt=<n>.json`."""
    return Path(_record_path(log_path))


def _record_path(log_path: str | os.PathLike[str]) -> str:
    return os.path.splitext(os.fspath(log_path))[0] + ".json"


def write_try_record(
    log_path: str | os.PathLike[str], record: dict[str, Any], *, begin: bool = False
) -> None:
    """Add `record` to the try's record file (0600, like the log), as one JSON line; `begin` empties
    the file first (a previous life's lines go).

    The worker writes a line when the task's code is about to run and another when the try ended, so
    that recovery learns what happened to a try whose scheduler died before recording it. Appending
    one line creates one file per try, where replacing the file atomically cost a temporary file and
    a rename per write (file creation is most of a no-op try's CPU): a reader that meets a line still
    being written takes the line before it, as it took the old file before a rename.
    """
    fd = open_try_record(log_path, begin=begin)
    try:
        append_try_record(fd, record)
    finally:
        os.close(fd)


def open_try_record(log_path: str | os.PathLike[str], *, begin: bool = False) -> int:
    """The try's record file opened for appending (`begin` empties it): a worker keeps it open from
    the try's first line to its last, one file opening per try instead of two."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if begin else 0)
    return _open_private(_record_path(log_path), flags)


def append_try_record(fd: int, record: dict[str, Any]) -> None:
    """Add `record` as one JSON line to the record file open as `fd` (see `write_try_record`)."""
    view = memoryview((json.dumps(record) + "\n").encode())
    while view:
        view = view[os.write(fd, view) :]


def read_try_record(log_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The try's latest record, or None when its task's code never began (or no line is readable).
    A file of an older worker (one JSON object, no newline) reads as one line."""
    try:
        text = Path(_record_path(log_path)).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    for line in reversed(text.splitlines()):
        try:
            record = json.loads(line)
        except ValueError:  # the last line, while it is being written
            continue
        if isinstance(record, dict):
            return record
    return None
