"""Who makes a change (a token's name and role, through the API or the UI), and its audit row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from minisched.db.audit import record_event

ROLES = ("viewer", "op", "admin")


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    via: str = "api"

    def may(self, role: str) -> bool:
        """True when this actor's role is `role` or above it (viewer < op < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def audit(
    actor: Actor,
    action: str,
    *,
    session: Session,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """One `log` row per change: event `api_<action>` or `ui_<action>`, owner = the token's name."""
    record_event(
        f"{actor.via}_{action}",
        session=session,
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        owner=actor.name,
        extra=dict(extra or {}),
    )
