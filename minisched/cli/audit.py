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
    only_at_head: bool = False,
) -> None:
    """Record `cli_<command>`; `only_at_head` skips it when the schema (after a downgrade) cannot hold it."""
    from minisched.db.audit import record_event
    from minisched.db.session import create_session

    if only_at_head:
        from minisched.db.migrate import is_at_head
        from minisched.settings import get_settings

        if not is_at_head(get_settings().db_url):
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
