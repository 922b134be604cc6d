"""Recording the SQL statements a piece of work sends, for the tests that check a step is set-based
(a fixed number of statements whatever the number of rows): one listener instead of a copy per folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event

TRANSACTION_CONTROL = ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK")


def is_transaction_control(statement: str) -> bool:
    return statement.lstrip().upper().startswith(TRANSACTION_CONTROL)


@contextmanager
def recorded_statements(keep: Callable[[str], bool] = lambda _statement: True) -> Iterator[list[str]]:
    """The statements sent on the configured engine inside the block for which `keep` is true, in order
    (seen by `before_cursor_execute`, so an executemany is one statement)."""
    from minisched.db.session import get_engine

    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if keep(statement):
            statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
