"""Secrets at rest: connection passwords and extras and variable values are stored as Fernet tokens.

The keys come from the `fernet_key` setting (comma-separated): the first encrypts, every one decrypts,
so a new key can be put first, every row rotated to it, and then the old key dropped.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.exceptions import SecretsError
from minisched.models import Connection, Variable
from minisched.settings import CONFIG_FILE_NAME, configure, get_settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

KEY_SETTING = "MINISCHED_FERNET_KEY (or fernet_key in $MINISCHED_HOME/minisched.toml)"


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


@cache
def _fernet(keys: str) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key.encode("ascii")) for key in keys.split(",")])


def _configured() -> MultiFernet:
    keys = get_settings().fernet_key
    if not keys:
        raise SecretsError(
            f"no Fernet key is configured to encrypt or decrypt secrets: set {KEY_SETTING}; "
            "`minisched initdb` writes a new one when none is set"
        )
    return _fernet(keys)


def encrypt(plain: str | None) -> str | None:
    """A Fernet token of `plain` under the first key; None stays None (NULL)."""
    if plain is None:
        return None
    return _configured().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str | None, what: str) -> str | None:
    """The text inside `token`; `what` names the secret in the error if no configured key opens it."""
    from cryptography.fernet import InvalidToken

    if token is None:
        return None
    try:
        return _configured().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretsError(
            f"cannot decrypt {what}: none of the configured Fernet keys opens it; set {KEY_SETTING} "
            "to include the key it was written with (keys are comma-separated, the first encrypts)"
        ) from None


def ensure_key_configured(home: Path) -> bool:
    """Write a new key to `home`/minisched.toml (mode 0600) unless one is configured; True if written."""
    if get_settings().fernet_key:
        return False
    path = home / CONFIG_FILE_NAME
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(f'{separator}fernet_key = "{generate_key()}"\n')
    path.chmod(0o600)
    configure()
    return True


def rotate_all(*, session: Session) -> int:
    """Re-encrypt every connection secret and variable value with the first key; how many rows changed."""
    connections = session.scalars(select(Connection).order_by(Connection.id)).all()
    variables = session.scalars(select(Variable).order_by(Variable.id)).all()
    for connection in connections:
        what = f"connection {connection.conn_id!r}"
        connection.password = _rotated(connection.password, f"the password of {what}")
        connection.extra = _rotated(connection.extra, f"the extra of {what}")
    for variable in variables:
        variable.val = _rotated(variable.val, f"variable {variable.key!r}")
    session.flush()
    return len(connections) + len(variables)


def _rotated(token: str | None, what: str) -> str | None:
    from cryptography.fernet import InvalidToken

    if token is None:
        return None
    try:
        return _configured().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        decrypt(token, what)  # raises the one-line error naming the secret
        raise
