"""/pools: list, look up, create, change, delete (occupancy is derived from task-instance states)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from minisched.api import convert, schemas
from minisched.api.deps import Op, PageDep, SessionDep, Viewer
from minisched.api.problems import ERROR_RESPONSES
from minisched.service import pools
from minisched.service.errors import InvalidInput

router = APIRouter(tags=["Pool"], responses=ERROR_RESPONSES)


@router.get("/pools", response_model=schemas.PoolCollection)
def get_pools(session: SessionDep, page: PageDep, _actor: Viewer) -> schemas.PoolCollection:
    rows, total = pools.list_pools(session=session, page=page)
    by_state = pools.slots_by_state(session=session)
    return schemas.PoolCollection(pools=[convert.pool(row, by_state) for row in rows], total_entries=total)


@router.get("/pools/{pool_name}", response_model=schemas.Pool)
def get_pool(pool_name: str, session: SessionDep, _actor: Viewer) -> schemas.Pool:
    return convert.pool(pools.get_pool(pool_name, session=session), pools.slots_by_state(session=session))


@router.post("/pools", response_model=schemas.Pool)
def post_pool(body: schemas.PoolBody, session: SessionDep, actor: Op) -> schemas.Pool:
    saved = pools.save_pool(
        body.name, body.slots, actor=actor, session=session, description=body.description, must_be_new=True
    )
    return convert.pool(saved, pools.slots_by_state(session=session))


@router.patch("/pools/{pool_name}", response_model=schemas.Pool)
def patch_pool(pool_name: str, body: schemas.PoolPatch, session: SessionDep, actor: Op) -> schemas.Pool:
    """Change slots and/or description; renaming a pool is not supported (tasks refer to it by name)."""
    if body.name is not None and body.name != pool_name:
        raise InvalidInput(f"pools cannot be renamed (tasks name their pool); create {body.name!r} instead")
    current = pools.get_pool(pool_name, session=session)
    saved = pools.save_pool(
        pool_name,
        current.slots if body.slots is None else body.slots,
        actor=actor,
        session=session,
        description=body.description,
        must_exist=True,
    )
    return convert.pool(saved, pools.slots_by_state(session=session))


@router.delete("/pools/{pool_name}", status_code=204, response_class=Response)
def delete_pool(pool_name: str, session: SessionDep, actor: Op) -> Response:
    pools.remove_pool(pool_name, actor=actor, session=session)
    return Response(status_code=204)
