"""Pools as operators see them: slots, and occupancy derived from task-instance states (never stored)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from minisched.db.session import NEW_SESSION, is_postgresql, provide_session
from minisched.exceptions import MinischedError
from minisched.models import DEFAULT_POOL_NAME, Pool, TaskInstance
from minisched.models.state import ACTIVE_TI_STATES

POOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
#: The most slots a pool may have: the column is a 32-bit integer on PostgreSQL (SQLite would take more).
MAX_SLOTS = 2**31 - 1


@dataclass(frozen=True)
class PoolUsage:
    pool: str
    slots: int
    occupied_slots: int
    description: str | None

    @property
    def open_slots(self) -> int:
        return self.slots - self.occupied_slots


@provide_session
def pool_usage(*, session: Session = NEW_SESSION) -> list[PoolUsage]:
    """Every pool with the slots its queued and running task instances hold, in one grouped query."""
    occupied = func.coalesce(func.sum(TaskInstance.pool_slots), 0)
    rows = session.execute(
        select(Pool.pool, Pool.slots, occupied, Pool.description)
        .outerjoin(
            TaskInstance,
            and_(TaskInstance.pool == Pool.pool, TaskInstance.state.in_(sorted(ACTIVE_TI_STATES))),
        )
        .group_by(Pool.id, Pool.pool, Pool.slots, Pool.description)
        .order_by(Pool.pool)
    )
    return [PoolUsage(name, slots, int(used), description) for name, slots, used, description in rows]


@provide_session
def set_pool(
    name: str, slots: int, *, session: Session = NEW_SESSION, description: str | None = None
) -> bool:
    """Create the pool or change its slots (and description, when given); True when it was created."""
    if not POOL_NAME.match(name):
        raise MinischedError(f"invalid pool name {name!r}: use up to 256 letters, digits, '_', '.' or '-'")
    if not 0 <= slots <= MAX_SLOTS:
        raise MinischedError(f"a pool cannot have {slots} slots; use 0 to {MAX_SLOTS}")
    values: dict[str, object] = {"slots": slots}
    if description is not None:
        values["description"] = description
    changed = session.execute(
        update(Pool).where(Pool.pool == name).values(**values).execution_options(synchronize_session=False)
    )
    if getattr(changed, "rowcount", 0):
        return False
    session.add(Pool(pool=name, slots=slots, description=description))
    session.flush()
    return True


@provide_session
def delete_pool(name: str, *, session: Session = NEW_SESSION) -> None:
    """Delete an idle pool; default_pool and pools holding queued or running tries are refused."""
    if name == DEFAULT_POOL_NAME:
        raise MinischedError(f"{DEFAULT_POOL_NAME} cannot be deleted: tasks without a pool run in it")
    # Schedulers lock every pool row before queueing, so none can queue into this pool meanwhile.
    locked = select(Pool.id).where(Pool.pool == name)
    if is_postgresql(session):
        locked = locked.with_for_update()
    if session.scalar(locked) is None:
        raise MinischedError(f"pool {name!r} does not exist; `minisched pools list` shows the pools")
    busy = session.scalar(
        select(func.count()).where(
            TaskInstance.pool == name, TaskInstance.state.in_(sorted(ACTIVE_TI_STATES))
        )
    )
    if busy:
        raise MinischedError(
            f"pool {name!r} is in use by {busy} queued or running task instance(s); "
            "delete it once they have finished"
        )
    session.execute(delete(Pool).where(Pool.pool == name))
