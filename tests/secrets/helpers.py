"""Helpers of the connections/variables/Fernet tests: raw table reads and in-process CLI calls."""

from __future__ import annotations

from sqlalchemy import text

from minisched.db.session import create_session
from tests.conftest import Env


def raw_rows(sql: str) -> list[tuple[object, ...]]:
    """Rows as stored (encrypted columns stay encrypted): what a reader of the database sees."""
    with create_session() as session:
        return [tuple(row) for row in session.execute(text(sql))]


def cli_ok(env: Env, *args: str) -> str:
    """Run `minisched ARGS` in-process; it must exit 0. Returns its stdout."""
    result = env.run_cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def cli_fails(env: Env, *args: str, code: int = 1, one_line: bool = False) -> str:
    """Run `minisched ARGS` in-process; it must exit `code` without a traceback (and, with `one_line`,
    say so in one line). Returns its stderr."""
    result = env.run_cli(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if one_line:
        assert len(result.stderr.strip().splitlines()) == 1
    return result.stderr
