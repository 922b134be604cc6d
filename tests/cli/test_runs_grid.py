"""`minisched runs`: the last runs of every DAG as a grid, for people (and JSON for scripts)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from minisched.cli import cli, commands_grid
from minisched.db.session import create_session
from minisched.models import DagRun
from tests.conftest import Env

DAG = """\
from datetime import datetime, timezone
from minisched import DAG, BashOperator

with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    BashOperator(task_id="only", bash_command="true")
"""
STATES = ["success", "failed", "running", "queued", "success"]


def _runs_with_states(env: Env, dag_id: str, states: list[str]) -> None:
    """Manual runs on 2024-01-01, -02, ... whose states are set to `states`, oldest first."""
    for day, state in enumerate(states, start=1):
        result = env.run_cli("dags", "trigger", dag_id, "--logical-date", f"2024-01-{day:02d}")
        assert result.exit_code == 0, result.output
        with create_session() as session:
            session.execute(update(DagRun).where(DagRun.run_id == result.stdout.strip()).values(state=state))


@pytest.fixture
def two_dags(env: Env) -> Env:
    env.write_dag("etl.py", DAG.format(dag_id="etl"))
    env.write_dag("idle.py", DAG.format(dag_id="idle"))
    assert env.run_cli("dags", "list").exit_code == 0
    _runs_with_states(env, "etl", STATES)
    return env


def test_grid_has_a_row_per_dag_and_a_cell_per_run_oldest_first(two_dags: Env) -> None:
    result = two_dags.run_cli("runs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["dag_id", "last", "25", "runs,", "oldest", "->", "newest"]
    assert lines[1].split() == ["etl", "S", "F", "R", "Q", "S"]
    assert lines[2].split() == ["idle"]
    assert "S success" in lines[-1] and "F failed" in lines[-1]
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_limit_keeps_the_newest_runs_and_dag_id_filters(two_dags: Env) -> None:
    result = two_dags.run_cli("runs", "--limit", "2", "--dag-id", "etl")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()[1:2]] == [["etl", "Q", "S"]]
    assert "idle" not in result.stdout


def test_json_lists_each_dag_with_its_runs(two_dags: Env) -> None:
    result = two_dags.run_cli("runs", "--limit", "3", "--output", "json")
    assert result.exit_code == 0, result.output
    grid = json.loads(result.stdout)
    assert [row["dag_id"] for row in grid] == ["etl", "idle"]
    assert grid[1]["runs"] == []
    assert grid[0]["runs"] == [
        {
            "run_id": f"manual__2024-01-0{day}T00:00:00+00:00",
            "state": state,
            "logical_date": f"2024-01-0{day}T00:00:00+00:00",
        }
        for day, state in [(3, "running"), (4, "queued"), (5, "success")]
    ]


def test_cells_are_coloured_on_a_terminal(two_dags: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands_grid, "colour_enabled", lambda: True)
    result = CliRunner().invoke(cli, ["runs", "--dag-id", "etl"], env=two_dags.vars, color=True)
    assert result.exit_code == 0, result.output
    assert "\x1b[32m\x1b[1mS" in result.stdout and "\x1b[31m\x1b[1mF" in result.stdout


def test_colour_only_for_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("sys.stdout", Terminal())
    assert commands_grid.colour_enabled()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not commands_grid.colour_enabled()


def test_no_dags_and_unknown_dag(env: Env) -> None:
    empty = env.run_cli("runs")
    assert empty.exit_code == 0 and empty.stdout.strip() == "No data found"
    assert json.loads(env.run_cli("runs", "-o", "json").stdout) == []
    unknown = env.run_cli("runs", "--dag-id", "nope")
    assert unknown.exit_code == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().splitlines() == [
        "Error: DAG 'nope' not found; run `minisched dags list` to see the DAGs"
    ]
    assert env.run_cli("runs", "--limit", "0").exit_code == 2
