"""`with DAG(...):` and `with TaskGroup(...):` blocks: what is open, innermost last.

One implementation for both kinds, so opening, closing and nesting behave the same. A ContextVar
holds each stack, so concurrent loaders (threads) never see each other's blocks.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

_T = TypeVar("_T")


class OpenBlocks(Generic[_T]):
    """The blocks of one kind open in this context."""

    def __init__(self, name: str) -> None:
        self._stack: ContextVar[tuple[_T, ...]] = ContextVar(name, default=())

    def innermost(self) -> _T | None:
        stack = self._stack.get()
        return stack[-1] if stack else None

    def push(self, block: _T) -> None:
        self._stack.set((*self._stack.get(), block))

    def pop(self, block: _T) -> None:
        """Close `block` if it is the innermost one (a block closed out of order changes nothing)."""
        stack = self._stack.get()
        if stack and stack[-1] is block:
            self._stack.set(stack[:-1])


class Block:
    """A context manager that makes the object the innermost open block of its kind (`_open`)."""

    _open: ClassVar[OpenBlocks[Any]]

    def __enter__(self) -> Self:
        self._open.push(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open.pop(self)
