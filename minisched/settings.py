"""Configuration resolution: command-line flag > environment variable > minisched.toml > default.

This module is the bottom layer: it imports nothing heavy, so `minisched --help` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "MINISCHED_"
CONFIG_FILE_NAME = "minisched.toml"


class ConfigError(ValueError):
    """A setting has a value minisched cannot use."""


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    dags_folder: Path
    logs_folder: Path
    executor: str
    parallelism: int
    zombie_threshold: float
    dags_are_paused_at_creation: bool
    scheduler_idle_sleep: float
    scheduler_heartbeat: float
    #: Comma-separated Fernet keys; the first encrypts, every one decrypts. Empty: none configured.
    fernet_key: str
    #: Words that make a variable's key sensitive, beyond the built-in ones (its value is masked in logs).
    sensitive_var_keys: tuple[str, ...]
    default_timezone: str
    #: A try's log file stops growing here (a truncation marker says so); the rest is discarded.
    task_log_max_bytes: int
    celery_broker_url: str
    default_queue: str
    task_queued_timeout: float
    db_outage_grace: float
    dag_file_processor_timeout: float
    dag_file_processor_memory_limit_mb: int
    dag_file_processor_processes: int
    #: Largest XCom value a try may push, in bytes of its JSON text.
    xcom_max_size: int

    def masked(self) -> dict[str, str]:
        """The effective settings as text, with any password and the Fernet keys hidden."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown = {key: mask_secrets(str(value)) for key, value in values.items()}
        if self.fernet_key:
            shown["fernet_key"] = "***"
        shown["sensitive_var_keys"] = ",".join(self.sensitive_var_keys)
        return shown


# name -> (parser, description); defaults that depend on home are filled in `load_settings`.
def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def _parse_positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def _parse_executor(text: str) -> str:
    value = text.strip().lower()
    if value not in EXECUTORS:
        raise ValueError(f"unknown executor {text!r}; choose one of {', '.join(EXECUTORS)}")
    return value


def _parse_fernet_keys(text: str) -> str:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    for position, key in enumerate(keys, start=1):
        if not _is_fernet_key(key):
            raise ValueError(
                f"key {position} of {len(keys)} is not a Fernet key (32 url-safe base64-encoded bytes); "
                'make one with `python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`'
            )
    return ",".join(keys)


def _is_fernet_key(key: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False


def _parse_words(text: str) -> tuple[str, ...]:
    return tuple(word.strip().lower() for word in text.split(",") if word.strip())


def _parse_queue_name(text: str) -> str:
    value = text.strip()
    if not value or "," in value:
        raise ValueError(f"expected one queue name (no commas), got {text!r}")
    return value


EXECUTORS = ("local", "sequential", "celery")


def _parse_timezone_name(text: str) -> str:
    """An IANA zone name (or UTC); checked here so a typo fails at start-up, not in a DAG file."""
    import zoneinfo

    name = text.strip()
    if name.upper() in {"UTC", "ETC/UTC", "GMT", "Z"}:  # Airflow's own default is spelt "utc"
        return "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown timezone {text!r}; use an IANA name like 'Europe/Berlin'") from None
    return name


_PARSERS: dict[str, Any] = {
    "home": lambda text: Path(text).expanduser(),
    "db_url": str,
    "dags_folder": lambda text: Path(text).expanduser(),
    "logs_folder": lambda text: Path(text).expanduser(),
    "executor": _parse_executor,
    "parallelism": _parse_positive_int,
    "zombie_threshold": _parse_positive_float,
    "dags_are_paused_at_creation": _parse_bool,
    "scheduler_idle_sleep": _parse_positive_float,
    "scheduler_heartbeat": _parse_positive_float,
    "fernet_key": _parse_fernet_keys,
    "sensitive_var_keys": _parse_words,
    "default_timezone": _parse_timezone_name,
    "task_log_max_bytes": _parse_positive_int,
    "celery_broker_url": str,
    "default_queue": _parse_queue_name,
    "task_queued_timeout": _parse_positive_float,
    "db_outage_grace": _parse_positive_float,
    "dag_file_processor_timeout": _parse_positive_float,
    "dag_file_processor_memory_limit_mb": _parse_positive_int,
    "dag_file_processor_processes": _parse_positive_int,
    "xcom_max_size": _parse_positive_int,
}


def _defaults(home: Path) -> dict[str, str]:
    return {
        "db_url": f"sqlite:///{home / 'minisched.db'}",
        "dags_folder": str(home / "dags"),
        "logs_folder": str(home / "logs"),
        "executor": "local",
        "parallelism": str(os.cpu_count() or 2),
        "zombie_threshold": "60",
        "dags_are_paused_at_creation": "false",
        "scheduler_idle_sleep": "0.05",
        "scheduler_heartbeat": "2",
        "fernet_key": "",
        "sensitive_var_keys": "",
        "default_timezone": "UTC",
        "task_log_max_bytes": str(100 * 1024 * 1024),
        "celery_broker_url": "",
        "default_queue": "default",
        "task_queued_timeout": "600",
        "db_outage_grace": "60",
        "dag_file_processor_timeout": "30",
        "dag_file_processor_memory_limit_mb": "2048",
        "dag_file_processor_processes": "2",
        "xcom_max_size": str(1024 * 1024),
    }


def _read_file(home: Path) -> dict[str, str]:
    path = home / CONFIG_FILE_NAME
    if not path.is_file():
        return {}
    import tomllib  # only when there is a file: every command reads the settings

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix the file or remove it") from exc
    unknown = sorted(set(data) - set(_PARSERS) - {"home"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_PARSERS))}"
        )
    return {key: str(value) for key, value in data.items()}


def load_settings(
    overrides: Mapping[str, object | None] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve every setting once; `overrides` are command-line flags (None means "not given")."""
    env = os.environ if environ is None else environ
    flags = {key: str(value) for key, value in (overrides or {}).items() if value is not None}
    home_text = flags.get("home") or env.get(ENV_PREFIX + "HOME") or "~/minisched"
    home = Path(home_text).expanduser()
    file_values = _read_file(home)
    defaults = _defaults(home)
    resolved: dict[str, Any] = {"home": home}
    for key, parse in _PARSERS.items():
        if key == "home":
            continue
        env_name = ENV_PREFIX + key.upper()
        source, text = _first_given(
            (f"--{key.replace('_', '-')}", flags.get(key)),
            (env_name, env.get(env_name) or None),
            (str(home / CONFIG_FILE_NAME), file_values.get(key)),
            ("default", defaults[key]),
        )
        try:
            resolved[key] = parse(text)
        except ValueError as exc:
            raise ConfigError(f"setting {key} from {source}: {exc}") from exc
    return Settings(**resolved)


def _first_given(*candidates: tuple[str, str | None]) -> tuple[str, str]:
    for source, value in candidates:
        if value is not None:
            return source, value
    raise AssertionError("the default is always given")


#: Where a URL's authority ends: `user:password@host` never holds these unencoded.
_AUTHORITY_END = re.compile(r"[\s/?#'\"<>]|$")
_KEY_VALUE_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<password>[^\s'\"]+)", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs (`scheme://user:***@host`) and `password=...` pairs.

    Linear in the length of the text, whatever it holds: it is applied to every log line and audit
    value, and a user controls those (a 200 KB conf once took 30 s with backtracking regexes).
    """
    if "://" in text:
        text = _mask_url_passwords(text)
    # The pattern is case-insensitive, so it runs only on texts whose casefold holds "password": every
    # character it takes for a letter of that word (`S` and U+017F for `s`...) casefolds to that letter. A log
    # line without one (most of them, all of a no-op try's) skips a search at each of its positions.
    if "=" in text and "password" in text.casefold():
        text = _KEY_VALUE_PASSWORD.sub(r"\g<head>***", text)
    return text


def _mask_url_passwords(text: str) -> str:
    """One pass over the `://` marks; each authority is read once, then skipped.

    The userinfo ends at the authority's *last* '@', so an unencoded '@' in a password is hidden whole.
    """
    parts: list[str] = []
    done = 0
    mark = text.find("://")
    while mark != -1:
        start = mark + 3
        end_match = _AUTHORITY_END.search(text, start)
        end = end_match.start() if end_match else len(text)
        at = text.rfind("@", start, end)
        colon = text.find(":", start, at) if at != -1 else -1
        if colon != -1:
            parts.append(text[done : colon + 1])
            parts.append("***")
            done = at
        mark = text.find("://", max(end, start))
    parts.append(text[done:])
    return "".join(parts)


#: A try's environment keeps MINISCHED_CONN_* and MINISCHED_VAR_* (tasks read them on purpose) and
#: loses every other MINISCHED_ variable whose name ends like a credential: MINISCHED_DB_URL,
#: MINISCHED_FERNET_KEY, MINISCHED_CELERY_BROKER_URL, and any future one named the same way.
_TASK_VISIBLE_PREFIXES = (ENV_PREFIX + "CONN_", ENV_PREFIX + "VAR_")
_SECRET_SUFFIXES = ("_URL", "_URI", "_KEY", "_PASSWORD", "_SECRET", "_TOKEN")


def is_hidden_from_tasks(name: str) -> bool:
    """Whether the environment variable `name` is minisched's own credential (see the rule above)."""
    upper = name.upper()
    return (
        upper.startswith(ENV_PREFIX)
        and not upper.startswith(_TASK_VISIBLE_PREFIXES)
        and upper.endswith(_SECRET_SUFFIXES)
    )


def task_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` as a try may see it: without minisched's own credentials."""
    return {name: value for name, value in environ.items() if not is_hidden_from_tasks(name)}


@contextlib.contextmanager
def environ_of_a_try() -> Iterator[None]:
    """For the duration, this process's environment is the one a try sees (`task_environ`): what
    `dags test` and `tasks test` wrap the tries they run in-process with. The settings are resolved
    first, so minisched itself keeps its credentials."""
    get_settings()
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if is_hidden_from_tasks(name)}
    try:
        yield
    finally:
        os.environ.update(hidden)


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, resolved from env and file on first use."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


def configure(overrides: Mapping[str, object | None] | None = None) -> Settings:
    """Re-resolve the settings (with command-line flags) and make them the process-wide ones."""
    global _current
    _current = load_settings(overrides)
    return _current
