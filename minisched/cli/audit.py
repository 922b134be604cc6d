"""Write the `cli_<command>` audit row for a command that changed something."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def audit_cli(
    command: str,
    arguments: Mapping[str, Any],
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    schema_may_lag: bool = False,
) -> None:
    """Record `cli_<command>`.

    `schema_may_lag`: after upgradedb/downgradedb the schema may be older than the models; the row is
    then written only if the `log` table has all of its columns, and skipped otherwise.
    """
    from minisched.db.audit import record_event
    from minisched.db.session import create_session

    if schema_may_lag and not _log_table_complete():
        return
    with create_session() as session:
        record_event(
            f"cli_{command.replace('-', '_').replace(' ', '_')}",
            session=session,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            extra=dict(arguments),
        )


def _log_table_complete() -> bool:
    from sqlalchemy import inspect

    from minisched.db.session import get_engine
    from minisched.models import Log

    inspector = inspect(get_engine())
    if not inspector.has_table(Log.__tablename__):
        return False
    present = {column["name"] for column in inspector.get_columns(Log.__tablename__)}
    return {column.name for column in Log.__table__.columns} <= present
