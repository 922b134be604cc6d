"""DAG-level callbacks owed for ended runs: written with the run's end, run by another process.

The scheduler never calls user code, so ending a run only records a `dag_callback_request` row in the
same transaction (a crash right after cannot lose it). `DagCallbackLauncher` then starts the callback
process (`minisched.scheduler.executors.dag_callbacks`) when there is work: after this scheduler
wrote requests, and when recovery is due (requests left by a dead scheduler or a killed process).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from minisched.models import DagCallbackRequest, DagRunState, RunKey
from minisched.models.dag_callback_request import claimable
from minisched.scheduler.dag_cache import DagStructureCache

log = logging.getLogger(__name__)

#: The callback process's log, under the logs folder.
LOG_NAME = "dag_callbacks.log"


def request_dag_callbacks(
    ended: Mapping[RunKey, str],
    deadlocked: set[RunKey],
    *,
    session: Session,
    cache: DagStructureCache,
    now: datetime,
) -> int:
    """Record one request per ended run whose DAG has a callback for its outcome (one insert)."""
    if not ended:
        return 0
    dags = cache.get_many({dag_id for dag_id, _ in ended}, session=session)
    rows = []
    for key, state in ended.items():
        dag = dags.get(key[0])
        kind = "success" if state == DagRunState.SUCCESS else "failure"
        if dag is None or kind not in dag.callbacks:
            continue
        reason = "success" if kind == "success" else _failure_reason(key, deadlocked)
        rows.append({"dag_id": key[0], "run_id": key[1], "kind": kind, "reason": reason, "created_at": now})
    if rows:
        session.execute(insert(DagCallbackRequest), rows)
    return len(rows)


def _failure_reason(key: RunKey, deadlocked: set[RunKey]) -> str:
    return "all_tasks_deadlocked" if key in deadlocked else "task_failure"


def any_pending(*, session: Session, now: datetime) -> bool:
    return bool(session.scalar(select(exists().where(claimable(now)))))


class DagCallbackLauncher:
    """Starts the callback process when asked, at most one at a time per scheduler. Its output (what
    callbacks print, and the traceback of one that raised) goes to `log_path`, not the scheduler's."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._again = False  # requests came while the process ran: it may have looked already

    def launch(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._again = True
            return
        self._again = False
        # A session of its own: a Ctrl-C or SIGTERM meant for the scheduler does not cut a callback
        # short; the process ends by itself once no request is left.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "minisched.scheduler.executors.dag_callbacks"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("Started the DAG callback process (pid %d; its log: %s)", self._process.pid, self.log_path)

    def poll(self) -> None:
        """Reap a finished callback process, and start another if requests came in meanwhile."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None
            if self._again:
                self.launch()
