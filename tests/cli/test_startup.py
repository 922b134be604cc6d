"""The CLI starts fast: `--help` must not import the database stack or DAG files."""

from __future__ import annotations

import subprocess
import sys


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from minisched.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='minisched')\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'croniter', 'fastapi', 'uvicorn', 'jinja2',"
        " 'pydantic', 'starlette') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout, result.stdout


def test_every_command_has_help() -> None:
    from click.testing import CliRunner

    from minisched.cli import cli

    def walk(group, prefix):  # type: ignore[no-untyped-def]
        for name, command in group.commands.items():
            yield [*prefix, name]
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    for path in walk(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.output
