"""Pools for the API and the UI: slots, occupancy (derived from task-instance states), changes audited."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minisched.exceptions import MinischedError
from minisched.inputs import check_text
from minisched.models import DEFAULT_POOL_NAME, TaskInstance
from minisched.models.state import ACTIVE_TI_STATES
from minisched.pools import PoolUsage, delete_pool, pool_usage, set_pool
from minisched.service.actor import Actor, audit
from minisched.service.errors import Conflict, InvalidInput, NotFound
from minisched.service.paging import MAX_LIMIT, Page

ORDER_KEYS = {"name", "slots", "occupied_slots", "open_slots"}


def slots_by_state(*, session: Session) -> dict[tuple[str, str], int]:
    """(pool, queued|running) -> the slots its task instances in that state hold, in one grouped query."""
    rows = session.execute(
        select(TaskInstance.pool, TaskInstance.state, func.sum(TaskInstance.pool_slots))
        .where(TaskInstance.state.in_(sorted(ACTIVE_TI_STATES)))
        .group_by(TaskInstance.pool, TaskInstance.state)
    )
    return {(pool, str(state)): int(slots or 0) for pool, state, slots in rows}


def list_pools(*, session: Session, page: Page) -> tuple[list[PoolUsage], int]:
    """Pools are few: occupancy comes from one grouped query, sorting and paging are done here."""
    if page.limit < 1 or page.limit > MAX_LIMIT or page.offset < 0:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT} and offset 0 or more")
    key = page.order_by or "name"
    name = key.removeprefix("-")
    if name not in ORDER_KEYS:
        raise InvalidInput(f"cannot order by {name!r}; use one of {', '.join(sorted(ORDER_KEYS))}")
    pools = pool_usage(session=session)
    attribute = "pool" if name == "name" else name
    pools.sort(key=lambda pool: getattr(pool, attribute), reverse=key.startswith("-"))
    return pools[page.offset : page.offset + page.limit], len(pools)


def get_pool(name: str, *, session: Session) -> PoolUsage:
    for pool in pool_usage(session=session):
        if pool.pool == name:
            return pool
    raise NotFound(f"pool {name!r} does not exist; GET /api/v1/pools lists the pools")


def save_pool(
    name: str,
    slots: int,
    *,
    actor: Actor,
    session: Session,
    description: str | None = None,
    must_be_new: bool = False,
    must_exist: bool = False,
) -> PoolUsage:
    check_text(description or "", "the description")
    exists = any(pool.pool == name for pool in pool_usage(session=session))
    if must_be_new and exists:
        raise Conflict(f"pool {name!r} already exists; PATCH /api/v1/pools/{name} changes it")
    if must_exist and not exists:
        raise NotFound(f"pool {name!r} does not exist; POST /api/v1/pools creates it")
    try:
        set_pool(name, slots, session=session, description=description)
    except MinischedError as exc:
        raise InvalidInput(str(exc)) from None
    audit(
        actor, "pool_set", session=session, extra={"pool": name, "slots": slots, "description": description}
    )
    return get_pool(name, session=session)


def remove_pool(name: str, *, actor: Actor, session: Session) -> None:
    get_pool(name, session=session)
    try:
        delete_pool(name, session=session)
    except MinischedError as exc:
        raise (InvalidInput if name == DEFAULT_POOL_NAME else Conflict)(str(exc)) from None
    audit(actor, "pool_delete", session=session, extra={"pool": name})
