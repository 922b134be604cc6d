"""Shared helpers of the DAG-folder tests: DAG sources, a refresh, statement and import counters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from minisched.dagfiles.loader import RefreshReport
from minisched.dagfiles.refresh import refresh_dag_folder
from minisched.db.session import create_session
from minisched.models import DagModel, ImportError_
from tests.sql_statements import is_transaction_control, recorded_statements

NOW = datetime(2024, 3, 10, 12, 30, tzinfo=UTC)
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


HEADER = "from datetime import datetime, timedelta, timezone\nfrom minisched import DAG, BashOperator\n"


def dag_source(dag_id: str, *, counter: Path | None = None, **block: Any) -> str:
    """A small valid DAG file; `counter` gets one character appended per import of the file."""
    side_effect = f"open({str(counter)!r}, 'a').write('x')\n" if counter else ""
    return HEADER + side_effect + dag_block(dag_id, **block)


def dag_block(
    dag_id: str,
    *,
    schedule: str = '"@daily"',
    start: str = "datetime(2024, 1, 1, tzinfo=timezone.utc)",
    tasks: int = 2,
    dag_args: str = "",
) -> str:
    """One `with DAG(...)` block of `tasks` chained Bash tasks (needs HEADER's imports)."""
    lines = [f"with DAG({dag_id!r}, schedule={schedule}, start_date={start}{dag_args}):"]
    lines += [f"    t{i} = BashOperator(task_id='t{i}', bash_command='echo {i}')" for i in range(tasks)]
    lines.append("    " + " >> ".join(f"t{i}" for i in range(tasks)) if tasks else "    pass")
    return "\n".join(lines) + "\n"


def refresh(folder: Path, now: datetime = NOW) -> RefreshReport:
    return refresh_dag_folder(folder, now=now)


def dag_rows() -> dict[str, DagModel]:
    with create_session() as session:
        return {row.dag_id: row for row in session.scalars(select(DagModel))}


def import_errors() -> dict[str, str]:
    with create_session() as session:
        rows = session.execute(select(ImportError_.filename, ImportError_.stacktrace)).all()
    errors: dict[str, str] = {}
    for filename, stacktrace in rows:
        assert filename not in errors, f"{filename} has more than one import error"
        errors[filename] = stacktrace
    return errors


def imports_counted(counter: Path) -> int:
    return len(counter.read_text()) if counter.exists() else 0


@dataclass
class StatementLog:
    statements: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(WRITE_VERBS)]

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    def on(self, table: str) -> list[str]:
        return [s for s in self.writes if f" {table} " in f" {s.replace('(', ' ')} ".lower()]


@contextmanager
def count_statements() -> Iterator[StatementLog]:
    """Every SQL statement sent on the configured engine (transaction control excluded)."""
    with recorded_statements(lambda statement: not is_transaction_control(statement)) as statements:
        yield StatementLog(statements)
