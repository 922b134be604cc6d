"""`limit` / `offset` / `order_by` for every list, as Airflow's API has them (`order_by=-start_date`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, asc, desc, func, select
from sqlalchemy.orm import Session

from minisched.service.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.sql._typing import ColumnExpressionArgument

MAX_LIMIT = 1000
#: The largest offset a list takes: bigger ones cannot be bound on every backend (SQLite: 64 bits).
MAX_OFFSET = 2**31 - 1
AnySelect = Select[*tuple[Any, ...]]
Q = TypeVar("Q", bound=AnySelect)


@dataclass(frozen=True)
class Page:
    limit: int = 100
    offset: int = 0
    order_by: str | None = None


def ordered(
    query: Q,
    page: Page,
    columns: Mapping[str, ColumnExpressionArgument[Any]],
    default: str,
    tie_breakers: Sequence[ColumnExpressionArgument[Any]] = (),
) -> Q:
    """The query sorted by `page.order_by` (a key of `columns`, `-` for descending), then paged."""
    order = order_clauses(page, columns, default, tie_breakers)
    return query.order_by(*order).limit(page.limit).offset(page.offset)


def order_clauses(
    page: Page,
    columns: Mapping[str, ColumnExpressionArgument[Any]],
    default: str,
    tie_breakers: Sequence[ColumnExpressionArgument[Any]] = (),
) -> list[Any]:
    """The ORDER BY of `ordered`, checked (a bad limit, offset or column is an InvalidInput)."""
    check_page(page, columns, default)
    key = page.order_by or default
    column = columns[key.removeprefix("-")]
    first = desc(column) if key.startswith("-") else asc(column)
    return [first, *tie_breakers]


def check_page(page: Page, columns: Mapping[str, Any], default: str) -> None:
    """Raise InvalidInput for a limit, offset or order that `order_clauses` would refuse."""
    if page.limit < 1 or page.limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {page.limit}")
    if page.offset < 0:
        raise InvalidInput(f"offset must be 0 or more, got {page.offset}")
    name = (page.order_by or default).removeprefix("-")
    if name not in columns:
        raise InvalidInput(f"cannot order by {name!r}; use one of {', '.join(sorted(columns))}")


def count(query: AnySelect, *, session: Session) -> int:
    """How many rows `query` has without paging (Airflow's `total_entries`)."""
    return int(session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
