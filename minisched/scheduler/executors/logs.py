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
    logs_folder: str | os.PathLike[str], dag_id: str, run_id: str, task_id: str, try_number: int
) -> Path:
    """`<logs>/dag_id=<d>/run_id=<r>/task_id=<t>/attempt=<n>.log`; run ids keep their ':' and '+'."""
    return (
        Path(logs_folder)
        / f"dag_id={_path_part(dag_id)}"
        / f"run_id={_path_part(run_id)}"
        / f"task_id={_path_part(task_id)}"
        / f"attempt={try_number}.log"
    )


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
    path = Path(log_path)
    _make_private_dirs(path.parent)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


def _make_private_dirs(folder: Path) -> None:
    # Path.mkdir(parents=True) gives the parents the umask's default mode; each level gets 0700 here.
    missing: list[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another worker
            level.mkdir(mode=0o700)


def record_path_for(log_path: str | os.PathLike[str]) -> Path:
    """The try's record beside its log: `attempt=<n>.json`."""
    return Path(log_path).with_suffix(".json")


def write_try_record(log_path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Replace the try's record atomically (0600, like the log): a reader sees the old one or the new
    one, never half.

    The worker writes it when the task's code is about to run and again when the try ended, so that
    recovery learns what happened to a try whose scheduler died before recording it.
    """
    path = record_path_for(log_path)
    _make_private_dirs(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(json.dumps(record))
    os.replace(temporary, path)


def read_try_record(log_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The try's record, or None when its task's code never began (or the record is unreadable)."""
    try:
        record = json.loads(record_path_for(log_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
