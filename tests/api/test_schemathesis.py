"""Property-based tests of the whole API from its own OpenAPI spec (schemathesis): no 5xx, and every
response — status, content type, body — matches /api/v1/openapi.json. Examples are bounded."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import make_tokens, write_dag
from tests.conftest import Env
from tests.secrets.conftest import new_key, use_keys

MAX_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_operation_matches_the_spec(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from minisched.api.app import create_app

    use_keys(env, monkeypatch, new_key())
    write_dag(env)
    assert env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    headers = {"Authorization": f"Bearer {make_tokens()['admin']}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(with_ui=False))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
