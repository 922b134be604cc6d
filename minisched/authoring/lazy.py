"""Context values read only when a try uses them, as Airflow's lazy context proxies.

``prev_data_interval_start_success`` and its siblings need a database read; most tries never look at
them, so they cost nothing until a template prints one or a callable touches one. A value left
unresolved behaves as what it stands for in text, comparisons, truth tests and attribute access;
``value is None`` cannot see through it (as in Airflow): compare with ``==`` or call ``resolve()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_UNSET = object()


class LazyValue:
    """A value computed by ``load`` on first use, then kept."""

    __slots__ = ("_load", "_value")

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._value: Any = _UNSET

    def resolve(self) -> Any:
        if self._value is _UNSET:
            self._value = self._load()
        return self._value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)

    def __str__(self) -> str:
        return str(self.resolve())

    def __repr__(self) -> str:
        return repr(self.resolve())

    def __format__(self, spec: str) -> str:
        return format(self.resolve(), spec)

    def __bool__(self) -> bool:
        return bool(self.resolve())

    def __eq__(self, other: object) -> bool:
        return bool(self.resolve() == _plain(other))

    def __hash__(self) -> int:
        return hash(self.resolve())

    def __lt__(self, other: object) -> bool:
        return bool(self.resolve() < _plain(other))

    def __le__(self, other: object) -> bool:
        return bool(self.resolve() <= _plain(other))

    def __gt__(self, other: object) -> bool:
        return bool(self.resolve() > _plain(other))

    def __ge__(self, other: object) -> bool:
        return bool(self.resolve() >= _plain(other))


def _plain(value: object) -> Any:
    return value.resolve() if isinstance(value, LazyValue) else value


def resolved(value: Any) -> Any:
    """``value``, or what it stands for when it is a LazyValue (for native template results)."""
    return _plain(value)
