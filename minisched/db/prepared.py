"""Core statements run straight on SQLite's cursor: compiled once, parameters bound by position.

A statement through SQLAlchemy's execution path costs 50-100 us of CPU beyond the driver's ~10 us
(cache key, parameter dictionaries, expanding `IN` post-compilation, an execution context and a
cursor result per statement). The scheduler loop runs ~10 small statements per chain hop, so that
path was most of a hop's CPU. Here a statement is compiled once by SQLAlchemy; each execution only
renders its expanding `IN` lists (cached per list length), binds the parameters in order with the
same type processors, runs the cursor and applies the result types. The engine's `before_` and
`after_cursor_execute` events are still dispatched, and driver errors are raised as SQLAlchemy's
`DBAPIError`s, as the rest of the code expects.

What it does not handle it leaves to SQLAlchemy (`None` from `run`): statements that need Python-side
column defaults or `onupdate` values (an INSERT that leaves out such a column), executemany with rows
of different keys, with RETURNING or with expanding lists, empty `IN` lists, other dialects than SQLite.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Delete, Insert, Select, Update
from sqlalchemy.engine.result import IteratorResult, Result, SimpleResultMetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TupleType, TypeEngine

Processor = Callable[[Any], Any] | None
_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")
#: Compiled forms kept per statement object (the loop's statements are built once, at import).
_MAX_PREPARED = 512


class _Prepared:
    """One statement compiled for SQLite, with what binding and reading its rows need."""

    def __init__(self, statement: Any, dialect: Any, column_keys: list[str] | None) -> None:
        # Constructs whose result columns SQLAlchemy knows when compiling (not `text()`, whose rows
        # it describes from the cursor).
        if not isinstance(statement, Select | CompoundSelect | Insert | Update | Delete):
            raise _Unsupported
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        # Python-side defaults and `onupdate` values are computed by SQLAlchemy's execution context.
        if any(getattr(compiled, name, None) for name in ("insert_prefetch", "update_prefetch")):
            raise _Unsupported
        if any(p.literal_execute for p in compiled.binds.values()):
            raise _Unsupported
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        expanding = [name for name in self.names if compiled.binds[name].expanding]
        if len(set(expanding)) != len(expanding) or not set(_POSTCOMPILE.findall(self.sql)) <= set(expanding):
            raise _Unsupported
        self.expanding = tuple(expanding)
        self.defaults: dict[str, Any] = {}
        self.processors: dict[str, Processor] = {}
        self.element_processors: dict[str, list[Processor]] = {}
        for name in self.names:
            param = compiled.binds[name]
            if not param.required:
                self.defaults[name] = param.effective_value
            if name in expanding:
                types = param.type.types if isinstance(param.type, TupleType) else [param.type]
                self.element_processors[name] = [_bind_processor(t, dialect) for t in types]
            else:
                self.processors[name] = _bind_processor(param.type, dialect)
        columns = compiled._result_columns  # (keyname, name, objects, type)
        if isinstance(statement, Select | CompoundSelect) and not columns:
            raise _Unsupported
        self.keys = [column[0] for column in columns]
        self.result_processors = [
            column[3].dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.metadata = SimpleResultMetaData(self.keys) if self.keys else None
        self.widths = {name: len(self.element_processors[name]) for name in self.expanding}
        self._rendered: dict[tuple[int, ...], str] = {}

    def rendered(self, lengths: tuple[int, ...], widths: dict[str, int]) -> str:
        """The SQL with each expanding list rendered for `lengths` (in the order of `expanding`)."""
        sql = self._rendered.get(lengths)
        if sql is None:
            by_name = dict(zip(self.expanding, lengths, strict=True))

            def placeholders(match: re.Match[str]) -> str:
                name, count = match.group(1), by_name[match.group(1)]
                one = "?" if widths[name] == 1 else "(" + ", ".join("?" * widths[name]) + ")"
                return ", ".join([one] * count)

            sql = self._rendered[lengths] = _POSTCOMPILE.sub(placeholders, self.sql)
        return sql

    def bind(self, params: dict[str, Any]) -> tuple[str, list[Any]] | None:
        """The SQL and the positional parameters for one execution; None if not supported."""
        values: list[Any] = []
        lengths: list[int] = []
        widths_of = self.widths
        for name in self.names:
            if name in params:
                value = params[name]
            elif name in self.defaults:
                value = self.defaults[name]
            else:
                return None  # a value is missing: SQLAlchemy's path says which, as it always has
            if name in widths_of:
                if not value:
                    return None
                lengths.append(len(value))
                processors = self.element_processors[name]
                width = widths_of[name]
                if width == 1:
                    processor = processors[0]
                    values.extend(value if processor is None else map(processor, value))
                else:
                    for item in value:
                        if len(item) != width:
                            return None
                        values.extend(v if p is None else p(v) for v, p in zip(item, processors, strict=True))
            else:
                processor = self.processors[name]
                values.append(value if processor is None else processor(value))
        if not lengths:
            return self.sql, values
        return self.rendered(tuple(lengths), widths_of), values

    def result(self, rows: list[Any] | None, rowcount: int) -> Result[Any]:
        if rows is None:
            return _Rows(_NO_COLUMNS, iter(()), rowcount)
        processors = self.result_processors
        if any(p is not None for p in processors):
            rows = [
                tuple(v if p is None else p(v) for v, p in zip(row, processors, strict=True)) for row in rows
            ]
        assert self.metadata is not None
        return _Rows(self.metadata, iter(rows), rowcount)


class _Rows(IteratorResult[Any]):
    """Rows already fetched, and the cursor's `rowcount` (an UPDATE's compare-and-set reads it)."""

    def __init__(self, metadata: SimpleResultMetaData, rows: Any, rowcount: int) -> None:
        super().__init__(metadata, rows)
        self.rowcount = rowcount


_NO_COLUMNS = SimpleResultMetaData([])


class _Unsupported(Exception):
    pass


def _bind_processor(type_: TypeEngine[Any], dialect: Any) -> Processor:
    processor: Processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


#: (id(statement), an INSERT's columns) -> (statement, its compiled form or None: not supported); the
#: entry keeps the statement alive, so its id cannot be reused while it is cached.
_cache: dict[tuple[int, tuple[str, ...]], tuple[Any, _Prepared | None]] = {}


def _prepared(statement: Any, dialect: Any, rows: Sequence[dict[str, Any]]) -> _Prepared | None:
    # An INSERT or UPDATE is compiled for the keys given, as SQLAlchemy does: those that name columns
    # are the values it inserts or sets (an UPDATE's own `values()` come first).
    columns = tuple(sorted(rows[0])) if isinstance(statement, Insert | Update) else ()
    key = (id(statement), columns)
    found = _cache.get(key)
    if found is not None and found[0] is statement:
        return found[1]
    if len(_cache) >= _MAX_PREPARED:
        _cache.clear()
    prepared: _Prepared | None
    try:
        prepared = _Prepared(
            statement, dialect, list(columns) if isinstance(statement, Insert | Update) else None
        )
    except _Unsupported:
        prepared = None
    _cache[key] = (statement, prepared)
    return prepared


def run(connection: Connection, statement: Any, params: Any) -> Result[Any] | None:
    """Run `statement` on SQLite's cursor in `connection`'s transaction; None: not handled here (the
    caller runs it through SQLAlchemy)."""
    dialect = connection.dialect
    if dialect.name != "sqlite":
        return None
    many = isinstance(params, list)
    rows: Sequence[dict[str, Any]] = params if many else [params or {}]
    if not rows or (many and any(row.keys() != rows[0].keys() for row in rows)):
        return None
    prepared = _prepared(statement, dialect, rows)
    if prepared is None or (many and (prepared.keys or prepared.expanding)):
        return None  # executemany with RETURNING, or with lists to expand: SQLAlchemy's business
    bound = [prepared.bind(row) for row in rows]
    if not all(bound):
        return None
    sql = bound[0][0]  # type: ignore[index]
    parameters = [b[1] for b in bound if b] if many else bound[0][1]  # type: ignore[index]
    fetched, rowcount = _execute(connection, sql, parameters, many=many, fetch=bool(prepared.keys))
    return prepared.result(fetched, rowcount)


def execute_text(connection: Connection, sql: str) -> None:
    """A statement without parameters or rows (e.g. BEGIN), on the cursor, between the cursor events."""
    _execute(connection, sql, (), many=False, fetch=False)


def _execute(
    connection: Connection, sql: str, parameters: Any, *, many: bool, fetch: bool
) -> tuple[list[Any] | None, int]:
    """The cursor's work, between the engine's cursor events; a driver error as SQLAlchemy raises it."""
    dialect = connection.dialect
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    dispatch = connection.dispatch
    try:
        for listener in dispatch.before_cursor_execute:
            listener(connection, cursor, sql, parameters, None, many)
        try:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
            fetched: list[Any] | None = list(cursor.fetchall()) if fetch else None
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                sql, parameters, exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc
        for listener in dispatch.after_cursor_execute:
            listener(connection, cursor, sql, parameters, None, many)
        rowcount: int = cursor.rowcount
        return fetched, rowcount
    finally:
        cursor.close()
