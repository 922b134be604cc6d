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
    """Register the values of `values` whose key looks sensitive (e.g. a connection's extra), at any
    depth: every string under a sensitive key, as Airflow's secrets masker does."""
    words = tuple(extra_words)
    for key, value in values.items():
        if is_sensitive_key(str(key), words):
            for text in _strings(value):
                register_secret(text)
        elif isinstance(value, Mapping | list):
            for inner in _mappings(value):
                register_sensitive(inner, words)


def redact(value: Any, extra_words: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like `value` where everything under a sensitive key, at any depth, is `***`
    (empty values stay as they are: they give nothing away and show that nothing is set)."""
    words = tuple(extra_words)
    if isinstance(value, Mapping):
        return {
            key: MASK
            if is_sensitive_key(str(key), words) and inner not in (None, "", {}, [])
            else redact(inner, words)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [redact(inner, words) for inner in value]
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def _mappings(value: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
    elif isinstance(value, list):
        for inner in value:
            yield from _mappings(inner)


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
