"""A Fernet key configured for every test here, and no secret left registered between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Env


def new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def use_keys(env: Env, monkeypatch: pytest.MonkeyPatch, keys: str | None) -> None:
    """Configure `keys` (comma-separated; None: no key) for this process and the processes it starts."""
    from minisched import settings

    if keys is None:
        env.vars.pop("MINISCHED_FERNET_KEY", None)
        monkeypatch.delenv("MINISCHED_FERNET_KEY", raising=False)
    else:
        env.vars["MINISCHED_FERNET_KEY"] = keys
        monkeypatch.setenv("MINISCHED_FERNET_KEY", keys)
    settings.configure()


@pytest.fixture
def secrets_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from minisched import masking

    use_keys(env, monkeypatch, new_key())
    yield env
    masking.forget_all()
