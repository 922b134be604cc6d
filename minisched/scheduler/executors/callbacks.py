"""Task callbacks (``on_execute_callback``, ``on_success_callback``, ...), run in the worker.

Each gets the try's context, as in Airflow. A callback that raises is logged with its traceback and
never changes the try's outcome.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any, TextIO

from minisched.scheduler.executors.logs import stamped

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator


def run_callbacks(task: BaseOperator, kind: str, context: dict[str, Any], log: TextIO) -> None:
    """Call the task's ``on_<kind>_callback`` functions in order; none of them can fail the try."""
    for callback in task.callbacks.get(kind, ()):
        name = getattr(callback, "__qualname__", repr(callback))
        log.write(stamped(f"Running on_{kind}_callback {name}"))
        try:
            callback(context)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            log.write(stamped(f"on_{kind}_callback {name} raised; the try's state is not changed:"))
            traceback.print_exception(exc, file=log)
