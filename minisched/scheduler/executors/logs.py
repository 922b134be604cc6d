"""Where a try's log file lives, and how minisched writes its own lines into it.

Shared by the worker that runs the try, the scheduler that fails a try from outside (a dead worker,
a dead scheduler's orphans), and `tasks logs`, which reads the file back.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path


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
    path = Path(log_path)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(stamped(message))
