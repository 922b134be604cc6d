"""Checks of what a user hands minisched (command-line arguments today, REST bodies later).

Each check either returns a value every layer below can store and use, or raises one MinischedError
that says what is wrong, where, and how to fix it -- before anything is written. It sits at the
bottom (beside settings): no database, no click, so the CLI and a future API call the same functions.

The limits, and why:
- a conf is a JSON object at most MAX_CONF_DEPTH levels deep, with finite numbers only: PostgreSQL's
  JSON refuses NaN/Infinity and SQLite would store them as text no JSON reader accepts, and a deep
  value is pickled to a worker and walked by the audit masker (recursion);
- dates lie in [MIN_DATE, MAX_DATE): beyond them adding a schedule's interval overflows datetime;
- ids fit a log path: each is one folder name `dag_id=<id>` (NAME_MAX, 255 bytes), `task_id=` being
  the longest prefix;
- integers fit the INTEGER columns they go to (32-bit signed on PostgreSQL);
- text is valid Unicode: a non-UTF-8 argument reaches Python as lone surrogates, which no database
  driver can encode, and NUL, which PostgreSQL text refuses.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from minisched.exceptions import MinischedError

MAX_CONF_DEPTH = 32
MIN_DATE = datetime(1900, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(9000, 1, 1, tzinfo=UTC)
#: NAME_MAX of Linux and macOS file systems, in bytes: one component of a log path.
NAME_MAX = 255
MAX_ID_LENGTH = NAME_MAX - len("task_id=")
MAX_INT = 2**31 - 1
MIN_INT = -(2**31)
#: Python's own limit for int(str): more digits would make decoding slow (CVE-2020-10735).
_MAX_INT_DIGITS = 4300


class InvalidInput(MinischedError, ValueError):
    """A value given by the user cannot be stored or used; the message says how to fix it."""


def parse_datetime(text: str, what: str = "date") -> datetime:
    """An ISO-8601 date or datetime in [MIN_DATE, MAX_DATE); without an offset it is read as UTC."""
    check_text(text, what)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"invalid {what} {_shown(text)}: use ISO-8601, e.g. 2024-01-31 or 2024-01-31T06:00:00+00:00"
        ) from None
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 has no UTC datetime
        utc = None
    if utc is None or not MIN_DATE <= utc < MAX_DATE:
        raise InvalidInput(
            f"{what} {_shown(text)} is out of range: use a date from {MIN_DATE.date()} "
            f"to before {MAX_DATE.date()}"
        )
    return utc


def parse_conf(text: str | None, what: str = "--conf") -> dict[str, Any] | None:
    """A run's conf from JSON text: an object, finite numbers, at most MAX_CONF_DEPTH deep."""
    if text is None:
        return None
    check_text(text, what)
    try:
        conf = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_sized_int
        )
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {_shown(text)}"
        ) from None
    except RecursionError:
        raise _too_deep(what) from None
    except ValueError as exc:  # a non-finite number, or an integer with too many digits
        raise InvalidInput(f"{what} {exc}; use finite numbers (or strings) in the JSON") from None
    return check_conf(conf, what)


def check_conf(conf: object, what: str = "conf") -> dict[str, Any]:
    """Check an already decoded conf (e.g. from a request body) as `parse_conf` does."""
    if not isinstance(conf, dict):
        raise InvalidInput(f"{what} must be a JSON object like '{{\"key\": 1}}', got {_shown(conf)}")
    # Iterative on purpose: a value too deep to recurse into must still get its one-line error.
    stack: list[tuple[object, int]] = [(conf, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_CONF_DEPTH:
                raise _too_deep(what)
            children = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            for key, child in children:
                if isinstance(key, str):
                    check_text(key, f"a key in {what}")
                stack.append((child, depth + 1))
        elif isinstance(value, str):
            check_text(value, f"a string in {what}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{what} holds {value}; use finite numbers (or strings) in the JSON")
    return conf


def check_id(value: str, what: str) -> str:
    """An id that becomes one folder name of a log path (`task_id=<id>`) must fit NAME_MAX."""
    check_text(value, what)
    if len(value.encode()) > MAX_ID_LENGTH:
        raise InvalidInput(
            f"{what} is {len(value.encode())} bytes long ({_shown(value)}); "
            f"use at most {MAX_ID_LENGTH}, so its log folder name fits the file system"
        )
    return value


def check_int(value: int, what: str, *, minimum: int = MIN_INT, maximum: int = MAX_INT) -> int:
    """An integer that fits the database column it goes to."""
    if not minimum <= value <= maximum:
        raise InvalidInput(f"{what} {value} is out of range: use an integer from {minimum} to {maximum}")
    return value


def parse_int(text: str, what: str) -> int:
    """A whole number typed as text (a form field); its range is for the caller to judge."""
    stripped = text.strip()
    digits = stripped.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > _MAX_INT_DIGITS:
        raise InvalidInput(f"{what} {_shown(text)} is not a whole number; type digits only, e.g. 4")
    return int(stripped)


def check_text(value: str, what: str) -> str:
    """Text any database accepts: no NUL, no lone surrogates (left by decoding a non-UTF-8 argument)."""
    if "\0" in value:
        raise InvalidInput(f"{what} contains a NUL character; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = _raw_bytes(value[exc.start : exc.end])
        raise InvalidInput(
            f"{what} is not valid UTF-8 (bytes {raw!r} at character {exc.start}); "
            "pass text in UTF-8 (check the terminal's or the file's encoding)"
        ) from None
    return value


def _raw_bytes(undecodable: str) -> bytes:
    try:
        return undecodable.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that came from a JSON escape, not from argv's bytes
        return undecodable.encode("utf-8", "backslashreplace")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"holds {name}, which JSON does not allow")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"holds {text}, which overflows a float")
    return value


def _sized_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError(f"holds an integer of {len(text)} digits (at most {_MAX_INT_DIGITS})")
    return int(text)


def _too_deep(what: str) -> InvalidInput:
    return InvalidInput(
        f"{what} is nested more than {MAX_CONF_DEPTH} levels deep; flatten it (e.g. dotted keys)"
    )


def _shown(value: object, limit: int = 80) -> str:
    """A short, printable excerpt of a (possibly huge or undecodable) value for an error line."""
    text = repr(value) if not isinstance(value, str) else value
    text = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
