"""XCom as a task sees it: values pushed in a try, values pulled from earlier tasks of the run.

Pushes are checked (JSON, size cap) at once, so a bad value fails the try with one line naming the
task and the type; they are held in the try and stored by the scheduler with the try's result, in
bulk. Pulls read the `xcom` table (the DB layer is imported only then), one short read per call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from minisched.exceptions import XComError

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator

RETURN_KEY = "return_value"
DEFAULT_MAX_SIZE = 1024 * 1024
MAX_KEY_LENGTH = 512


class XComArg:
    """Another task's value, resolved when the try runs: what a ``@task`` gets for ``other()`` or
    ``other()["key"]``."""

    def __init__(self, operator: BaseOperator, key: str = RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        return XComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        raise not_iterable(self.operator.task_id)

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def resolve(self, ti: XComPuller) -> Any:
        return ti.xcom_pull(task_ids=self.operator.task_id, key=self.key)


def not_iterable(task_id: str) -> TypeError:
    """`__getitem__` alone would make Python iterate a task's value by indexes 0, 1, ... forever."""
    return TypeError(
        f'the value of task {task_id!r} cannot be iterated in the DAG file; pick a key with ["key"]'
    )


class XComPuller(Protocol):
    def xcom_pull(self, task_ids: str | Iterable[str] | None = None, key: str = RETURN_KEY) -> Any: ...


def resolve_args(value: Any, ti: XComPuller) -> Any:
    """`value` with every XComArg (also inside lists, tuples and dicts) replaced by its value."""
    if isinstance(value, XComArg):
        return value.resolve(ti)
    if type(value) in (list, tuple):
        return type(value)(resolve_args(item, ti) for item in value)
    if type(value) is dict:
        return {key: resolve_args(item, ti) for key, item in value.items()}
    return value


def upstream_of(values: Iterable[Any]) -> list[BaseOperator]:
    """The tasks whose values `values` refer to (also inside lists, tuples and dicts)."""
    found: list[BaseOperator] = []
    for value in values:
        if isinstance(value, XComArg):
            found.append(value.operator)
        elif type(value) in (list, tuple):
            found.extend(upstream_of(value))
        elif type(value) is dict:
            found.extend(upstream_of(value.values()))
    return found


class TryXCom:
    """The XCom of one try (behind ``ti.xcom_push``/``ti.xcom_pull``): the values it pushed so far,
    and pulls from its run."""

    def __init__(
        self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1, max_size: int = DEFAULT_MAX_SIZE
    ) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = dag_id, run_id, task_id, map_index
        self.max_size = max_size
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        """Keep `value` under `key` (replacing an earlier push of the same key in this try)."""
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise XComError(
                f"task {self.task_id!r}: XCom key {key!r} is invalid; use a string of 1 to {MAX_KEY_LENGTH} "
                "characters"
            )
        self.pushed[key] = to_stored(value, task_id=self.task_id, key=key, max_size=self.max_size)

    def push_result(self, value: Any, *, multiple_outputs: bool) -> None:
        """Store a callable's return value as `return_value` (and, with multiple_outputs, per key)."""
        if value is None:
            return
        if multiple_outputs:
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise XComError(
                    f"task {self.task_id!r} has multiple_outputs=True but returned {type(value).__name__}, "
                    "not a dict with string keys"
                )
            for key, item in value.items():
                self.xcom_push(key, item)
        self.xcom_push(RETURN_KEY, value)

    def xcom_pull(
        self, task_ids: str | Iterable[str] | None = None, dag_id: str | None = None, key: str = RETURN_KEY
    ) -> Any:
        """The value one task pushed under `key` in this run (None if none), or a list of values when
        `task_ids` is a list; without `task_ids`, this task's own."""
        single = task_ids is None or isinstance(task_ids, str)
        if task_ids is None or isinstance(task_ids, str):
            wanted = [task_ids or self.task_id]
        else:
            wanted = [str(task_id) for task_id in task_ids]
        found = self._read(wanted, key, dag_id or self.dag_id)
        values = [found.get(task_id) for task_id in wanted]
        return values[0] if single else values

    def _read(self, task_ids: list[str], key: str, dag_id: str) -> dict[str, Any]:
        """An unmapped task's own values are only what this try pushed: its values are stored when it
        ends, so any in the table are an earlier try's, which the scheduler deletes when it records
        this retry's start -- a write that can come after the retry's code has already begun."""
        found: dict[str, Any] = {}
        own = dag_id == self.dag_id and self.task_id in task_ids
        if own and key in self.pushed:
            found[self.task_id] = self.pushed[key]
        skip_own = own and (key in self.pushed or self.map_index < 0)
        others = [t for t in task_ids if not (skip_own and t == self.task_id)]
        if others:
            from minisched.db.xcom import read_values

            found.update(read_values(dag_id, self.run_id, others, key))
        return found


def to_stored(value: Any, *, task_id: str, key: str, max_size: int) -> Any:
    """`value` as it will be stored (plain JSON data), or XComError saying why it cannot be."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise XComError(
            f"task {task_id!r}: XCom value for key {key!r} is not JSON-serializable "
            f"({_culprit(value, exc)}); return or push lists, dicts, strings, numbers, booleans or None"
        ) from None
    size = len(text.encode("utf-8"))
    if size > max_size:
        raise XComError(
            f"task {task_id!r}: XCom value for key {key!r} is {size:,} bytes, over the {max_size:,}-byte cap "
            "(the xcom_max_size setting); store large data elsewhere and push its location"
        )
    return json.loads(text)


def _culprit(value: Any, exc: Exception) -> str:
    message = str(exc)
    if "is not JSON serializable" in message:
        return f"type {message.split('Object of type ', 1)[-1].split(' is not', 1)[0]}"
    if isinstance(exc, ValueError):
        return "NaN or infinity"
    return f"type {type(value).__name__}"
