"""Fernet keys: initdb writes one, a missing or wrong key is one clear line, rotation keeps rows readable."""

from __future__ import annotations

import stat

import pytest

from tests.conftest import Env
from tests.secrets.conftest import new_key, use_keys
from tests.secrets.helpers import raw_rows


def _ok(env: Env, *args: str) -> str:
    result = env.run_process(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _one_line_error(env: Env, *args: str) -> str:
    result = env.run_process(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_initdb_writes_a_private_key_once_and_secrets_work_after(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(env, monkeypatch, None)
    env.home.mkdir(exist_ok=True)
    toml = env.home / "minisched.toml"
    toml.write_text("zombie_threshold = 60")  # no newline at the end: the key must go on its own line
    assert "Wrote a new Fernet key" in _ok(env, "initdb")
    assert stat.S_IMODE(toml.stat().st_mode) == 0o600
    written = toml.read_text()
    assert written.startswith("zombie_threshold = 60\nfernet_key = ") and written.count("fernet_key") == 1
    assert "Wrote a new Fernet key" not in _ok(env, "initdb")
    assert toml.read_text() == written

    _ok(env, "variables", "set", "db_password", "pw-in-toml-key")
    assert _ok(env, "variables", "get", "db_password") == "pw-in-toml-key\n"
    assert "fernet_key" in _ok(env, "config") and "***" in _ok(env, "config")
    assert written.split('"')[1] not in _ok(env, "config")


def test_missing_key_names_the_setting(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_keys(env, monkeypatch, None)
    error = _one_line_error(env, "variables", "set", "k", "v")
    assert "MINISCHED_FERNET_KEY" in error and "fernet_key" in error
    assert raw_rows("SELECT count(*) FROM variable") == [(0,)]


def test_malformed_key_names_the_setting(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_keys(env, monkeypatch, None)
    env.vars["MINISCHED_FERNET_KEY"] = "not-a-key"
    assert "MINISCHED_FERNET_KEY" in _one_line_error(env, "variables", "get", "k")


def test_wrong_key_is_one_line_never_garbage(secrets_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env = secrets_env
    _ok(env, "connections", "add", "c", "--conn-uri", "http://u:pw-12345@h")
    _ok(env, "variables", "set", "v", "value-1")
    use_keys(env, monkeypatch, new_key())
    for args in (("connections", "get", "c"), ("variables", "get", "v"), ("connections", "list")):
        error = _one_line_error(env, *args)
        assert "cannot decrypt" in error and "MINISCHED_FERNET_KEY" in error
        assert "pw-12345" not in error


def test_rotation_from_a_to_b(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    key_a, key_b = new_key(), new_key()
    use_keys(env, monkeypatch, key_a)
    _ok(env, "connections", "add", "c", "--conn-uri", "http://u:pw-12345@h/?x=y")
    _ok(env, "variables", "set", "v", "value-1")
    rows_under_a = raw_rows("SELECT password, extra FROM connection") + raw_rows(
        "SELECT val, NULL FROM variable"
    )

    use_keys(env, monkeypatch, f"{key_b},{key_a}")
    assert _ok(env, "variables", "get", "v") == "value-1\n"  # old rows still read before rotating
    assert _ok(env, "rotate-fernet-key") == "Re-encrypted 2 row(s) with the first Fernet key\n"
    assert set(
        raw_rows("SELECT password, extra FROM connection") + raw_rows("SELECT val, NULL FROM variable")
    ).isdisjoint(rows_under_a)

    use_keys(env, monkeypatch, key_b)
    assert _ok(env, "variables", "get", "v") == "value-1\n"
    assert '"password": "pw-12345"' in _ok(env, "connections", "get", "c", "--show-secrets", "-o", "json")
    assert raw_rows("SELECT count(*) FROM log WHERE event = 'cli_rotate_fernet_key'") == [(1,)]

    use_keys(env, monkeypatch, key_a)
    assert "cannot decrypt" in _one_line_error(env, "variables", "get", "v")
