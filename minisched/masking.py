"""Secrets registered at run time, hidden as `***` wherever a task's output is written.

A task registers the password of a connection it reads and the value of a variable whose key looks
sensitive; the task runner masks every registered secret in the try's log, in its raw, URL-quoted and
JSON-escaped forms. Values shorter than 5 characters are not registered (as in Airflow): masking
"abc" everywhere would make logs unreadable and give away nothing.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 5
MASK = "***"
#: Words that make a variable key or a connection extra key sensitive (case-insensitive, anywhere in it);
#: the `sensitive_var_keys` setting adds more.
SENSITIVE_KEY_WORDS = (
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
)

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask `value` (and its quoted and escaped forms) in everything masked from now on."""
    global _pattern
    if value is None or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    new = forms - _secrets
    if new:
        _secrets.update(new)
        # Longest first, so a secret that contains another is masked whole.
        alternatives = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(secret) for secret in alternatives))


def register_sensitive(values: Mapping[str, Any], extra_words: Iterable[str] = ()) -> None:
    """Register the string values of `values` whose key looks sensitive (e.g. a connection's extra)."""
    for key, value in values.items():
        if isinstance(value, str) and is_sensitive_key(key, extra_words):
            register_secret(value)


def is_sensitive_key(key: str, extra_words: Iterable[str] = ()) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in (*SENSITIVE_KEY_WORDS, *extra_words))


def mask_registered(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    if _pattern is None or not text:
        return text
    return _pattern.sub(MASK, text)


def forget_all() -> None:
    """Drop every registered secret (tests, and a process that starts over)."""
    global _pattern
    _secrets.clear()
    _pattern = None


class MaskingWriter(io.TextIOBase):
    """A text stream that writes whole lines to `raw` with every registered secret masked.

    Lines are held until their newline (or a flush), so a secret written in pieces is still masked.
    `fileno()` is the raw file's, so fd-level redirection keeps working; bytes that child processes
    write straight to that fd do not pass through here.
    """

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self._raw = raw
        self._pending = ""
        self._lock = threading.Lock()  # a task's threads may print at once

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in text:
                lines, _, self._pending = self._pending.rpartition("\n")
                self._raw.write(mask_registered(lines + "\n"))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                pending, self._pending = self._pending, ""
                self._raw.write(mask_registered(pending))
            self._raw.flush()

    def fileno(self) -> int:
        return self._raw.fileno()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]  # io's attribute is read-only at run time too
        return self._raw.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._raw.errors
