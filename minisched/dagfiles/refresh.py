"""The one way to bring a DAG folder into the metadata DB, used by the scheduler and by every command.

A refresh is three steps, and only the middle one runs user code, in other processes:
1. plan: which files changed (a stat of the folder and one SELECT, in a short transaction);
2. parse: the DAG file processor imports the changed files in child processes, outside any
   transaction, and sends back their serialized DAGs or one error line each;
3. apply: one short transaction writes the rows (see loader.py).

The scheduler must keep heartbeating and scheduling while a file takes 30 s to import, so it does not
wait for step 2: it calls `FolderRefresher.poll()` once per loop, which starts a refresh when one is
due, collects whatever replies have arrived without blocking, and applies the refresh once every file
is in. One poll costs at most a plan or an apply, never an import: a bound set by the size of the folder
and of the change, not by what a DAG file does. (A thread would give the same bound, but would race the
loop for the database and for the interpreter; polling keeps the loop single-threaded.)

Commands call `refresh_dag_folder`, which runs the same steps and waits for the parse, with no
transaction open meanwhile, so a slow DAG file never holds SQLite's write lock.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from minisched.dagfiles.loader import RefreshReport, apply_refresh
from minisched.dagfiles.plan import Plan, plan_refresh
from minisched.dagfiles.processor import DagFileProcessor, ParsedFile

T = TypeVar("T")
#: A refresh that finds more to parse after writing (a dag id changed owner) goes round at most this often.
MAX_ROUNDS = 4


class FolderRefresher:
    """Keeps one DAG folder in line with the DB; `poll()` never waits for a DAG file."""

    def __init__(
        self,
        dags_folder: Path,
        *,
        interval: float = 2.0,
        processor: DagFileProcessor | None = None,
        now: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self.dags_folder = dags_folder
        self.interval = interval
        self._processor = processor
        self._now = now
        self._next_at = 0.0
        self._plan: Plan | None = None
        self._results: dict[str, ParsedFile] = {}
        self._widened = False
        self._files_seen = 0

    @property
    def processor(self) -> DagFileProcessor:
        if self._processor is None:
            self._processor = DagFileProcessor()
        return self._processor

    def poll(self) -> RefreshReport | None:
        """Advance the refresh in progress, or start one when due; the report once one was applied."""
        if self._plan is None:
            if time.monotonic() < self._next_at:
                return None
            self._next_at = time.monotonic() + self.interval
            if not self._start():
                return None
        if not self._collect(wait=0.0):
            return None
        report = self._apply()
        if report.parse_again:
            self._next_at = 0.0  # go round again at once: those files were waiting for this write
        return report

    def refresh(self) -> RefreshReport:
        """Plan, parse and apply, waiting for the parse; again while the write asks for more parsing."""
        total = RefreshReport()
        for _ in range(MAX_ROUNDS):
            if not self._start():
                return dataclasses.replace(total, files_seen=self._files_seen)
            while not self._collect(wait=0.5):
                pass
            report = self._apply()
            total = total + report
            if not report.parse_again:
                break
        return total

    def close(self) -> None:
        if self._processor is not None:
            self._processor.close()

    def __enter__(self) -> FolderRefresher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the three steps -------------------------------------------------------------------------------
    def _start(self) -> bool:
        """Plan; False when nothing changed. Changed files go to the processor."""
        plan = _in_transaction(lambda session: plan_refresh(self.dags_folder, session=session))
        self._files_seen = len(plan.present)
        if plan.unchanged:
            return False
        self._plan, self._results, self._widened = plan, {}, False
        self.processor.submit(plan.to_import, str(self._folder_on_path()))
        return True

    def _collect(self, wait: float) -> bool:
        """Take in finished files; True once every file of the plan is in."""
        assert self._plan is not None
        for parsed in self.processor.collect(wait=wait):
            self._results[parsed.fileloc] = parsed
        if self.processor.busy:
            return False
        if not self._widened and any(r.error is None and not r.dags for r in self._results.values()):
            # A helper module changed: files that import it may define other DAGs now.
            self._widened = True
            others = [f for f in self._plan.present if f not in self._results]
            if others:
                self.processor.submit(others, str(self._folder_on_path()))
                return False
        return True

    def _apply(self) -> RefreshReport:
        plan, results = self._plan, self._results
        assert plan is not None
        self._plan, self._results = None, {}
        return _in_transaction(
            lambda session: apply_refresh(self.dags_folder, plan, results, session=session, now=self._now())
        )

    def _folder_on_path(self) -> Path:
        """The folder DAG files may import helpers from (the folder itself, or a single file's folder)."""
        folder = self.dags_folder.absolute()
        return folder if folder.is_dir() else folder.parent


def refresh_dag_folder(dags_folder: Path, *, now: datetime | None = None) -> RefreshReport:
    """Bring the DB in line with the folder, waiting for the parse; no transaction is open meanwhile."""
    with FolderRefresher(dags_folder, now=lambda: now) as refresher:
        return refresher.refresh()


def _in_transaction(work: Callable[..., T]) -> T:
    from minisched.db.retry import run_with_retries
    from minisched.db.session import create_session

    def attempt() -> T:
        with create_session() as session:
            return work(session)

    return run_with_retries(attempt)
