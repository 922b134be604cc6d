"""What every UI form that changes something shares: the change tried in a session of its own, and a
refused form sent back filled with what was typed (nothing is lost) -- except secrets, which are never
echoed into a page: their field comes back empty with a note saying to type it again."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from minisched.api.problems import cannot_store
from minisched.db.session import create_session
from minisched.exceptions import MinischedError


@dataclass(frozen=True)
class Typed:
    """A form's fields as the page shows them; `withheld` names the secrets typed but not shown."""

    values: Mapping[str, str] = field(default_factory=dict)
    withheld: frozenset[str] = frozenset()

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


def typed_back(typed: Mapping[str, str | None], *, secret: Iterable[str] = ()) -> Typed:
    """What a refused form shows again: each field as typed, the `secret` ones left out (and noted
    as withheld when something was typed in them)."""
    hidden = frozenset(secret)
    return Typed(
        values={name: value or "" for name, value in typed.items() if name not in hidden},
        withheld=frozenset(name for name in hidden if typed.get(name)),
    )


def refusal(change: Callable[[Session], object]) -> str | None:
    """Make `change` in a session of its own; None when stored, else the one error that refused it.

    A refused change is rolled back whole (its audit row too). What only the database judges (a value
    PostgreSQL cannot store) is the user's input too, so it is refused here, not shown as a fault.
    """
    try:
        with create_session() as session:
            change(session)
    except MinischedError as exc:
        return str(exc)
    except (DataError, UnicodeEncodeError) as exc:
        return cannot_store(exc)
    return None
