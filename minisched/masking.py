"""Secrets registered at run time, hidden as `***` wherever a task's output is written.

A task registers the password of a connection it reads and the value of a variable whose key looks
sensitive; the task runner masks every registered secret in the try's log, in its raw, URL-quoted and
JSON-escaped forms. Values shorter than 5 characters are not registered (as in Airflow): masking
"abc" everywhere would make logs unreadable and give away nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
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
    if value is None or len(value) < MIN_SECRET_LENGTH or value in _secrets:
        return  # a registered value came with all its forms: registering it again changes nothing
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
