"""Connection URIs as Airflow writes them, and the masking of registered secrets in every form."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from minisched import masking
from minisched.authoring.connection import Connection
from minisched.exceptions import InvalidConnection


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    masking.forget_all()
    yield
    masking.forget_all()


def test_uri_parts_are_decoded_and_round_trip() -> None:
    conn = Connection("c", uri="google-cloud-platform://us%40r:p%2Fw%3Ad@Host.example:8080/my%20db?a=1&b=x")
    assert (conn.conn_type, conn.login, conn.password) == ("google_cloud_platform", "us@r", "p/w:d")
    assert (conn.host, conn.port, conn.schema, conn.extra_dejson) == (
        "host.example",
        8080,
        "my db",
        {"a": "1", "b": "x"},
    )
    again = Connection("c", uri=conn.get_uri())
    assert again.to_fields() == conn.to_fields()


def test_nested_extra_travels_as_extra_param() -> None:
    conn = Connection("c", conn_type="http", host="h", extra={"retries": [1, 2], "verify": False})
    uri = conn.get_uri()
    assert "__extra__=" in uri
    assert Connection("c", uri=uri).extra_dejson == {"retries": [1, 2], "verify": False}
    assert Connection("c", uri="postgresql://h/db").conn_type == "postgres"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uri": "just-text"}, "is not a URI"),
        ({"uri": "http://u:pw@h:notaport/"}, "port"),
        ({"conn_type": "http", "extra": "[1]"}, "extra must be a JSON object"),
        ({"conn_type": "http", "port": 0}, "between 1 and 65535"),
    ],
)
def test_invalid_connections_say_what(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConnection, match=message):
        Connection("c", **kwargs)  # type: ignore[arg-type]


def test_env_connection_from_json_and_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINISCHED_CONN_MY_API", json.dumps({"conn_type": "http", "password": "pw-12345"}))
    monkeypatch.setenv("MINISCHED_CONN_MY_DB", "postgres://u:pw-67890@db:5432/x")
    assert Connection.get("my_api").password == "pw-12345"
    assert Connection.get("my_db").port == 5432
    assert masking.mask_registered("pw-12345 pw-67890") == "*** ***"


def test_every_form_of_a_secret_is_masked_and_short_ones_are_not() -> None:
    secret = 'a b"c/d&é'
    masking.register_secret(secret)
    masking.register_secret("abcd")
    forms = [secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]]
    assert masking.mask_registered(" | ".join(forms) + " abcd") == " | ".join(["***"] * 4) + " abcd"


def test_a_try_log_masks_a_secret_written_in_pieces(tmp_path: Path) -> None:
    from minisched.scheduler.executors.log_sink import LogSink

    masking.register_secret("hunter2-pw")
    log = tmp_path / "attempt=1.log"
    sink = LogSink(log, max_bytes=10_000)
    sink.feed(b"pass: hun")
    sink.feed(b"ter2-pw\nnext hunter2")
    assert log.read_text() == "pass: ***\n"
    sink.feed(b"-pw")
    sink.close()
    assert log.read_text() == "pass: ***\nnext ***\n"


def test_sensitive_keys_are_recognised() -> None:
    assert masking.is_sensitive_key("DB_PASSWORD") and masking.is_sensitive_key("slack_api_key")
    assert not masking.is_sensitive_key("region")
    assert masking.is_sensitive_key("region", ["region"])


def test_variables_with_sensitive_keys_are_registered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from minisched import Variable, settings

    monkeypatch.setenv("MINISCHED_HOME", str(tmp_path))
    monkeypatch.setenv("MINISCHED_SENSITIVE_VAR_KEYS", "Region, zone")
    monkeypatch.setenv("MINISCHED_VAR_REGION", "eu-west-1")
    monkeypatch.setenv("MINISCHED_VAR_COLOUR", "ultramarine")
    monkeypatch.setenv("MINISCHED_VAR_SLACK_TOKEN", "xoxb-12345")
    settings.configure()
    try:
        assert [Variable.get(k) for k in ("region", "colour", "slack_token")] == [
            "eu-west-1",
            "ultramarine",
            "xoxb-12345",
        ]
    finally:
        settings._current = None
    assert masking.mask_registered("eu-west-1 ultramarine xoxb-12345") == "*** ultramarine ***"
