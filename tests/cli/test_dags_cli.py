"""`minisched dags list / list-import-errors / show / pause / unpause`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from minisched.db.session import create_session
from minisched.models import DagModel, Log
from tests.conftest import Env

HEADER = "from datetime import datetime, timezone\nfrom minisched import DAG, BashOperator\n"
START = "start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)"


def _dag(dag_id: str, schedule: str = '"@daily"', body: str = "") -> str:
    tasks = body or (
        "    extract = BashOperator(task_id='extract', bash_command='echo e')\n"
        "    clean = BashOperator(task_id='clean', bash_command='echo c')\n"
        "    load = BashOperator(task_id='load', bash_command='echo l')\n"
        "    [extract, clean] >> load\n"
    )
    return HEADER + f"with DAG({dag_id!r}, schedule={schedule}, {START}, catchup=False):\n" + tasks


def _json(env: Env, *args: str) -> list[dict[str, object]]:
    result = env.run_cli(*args, "--output", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_dropped_file_shows_up_in_dags_list(env: Env) -> None:
    path = env.write_dag("etl.py", _dag("etl", '"0 * * * *"'))
    result = env.run_cli("dags", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == [
        "dag_id",
        "fileloc",
        "schedule",
        "is_paused",
        "next_dagrun",
    ]
    assert [c.strip() for c in lines[2].split("|")][:4] == ["etl", str(path), "0 * * * *", "False"]


def test_dags_list_json_has_the_contract_keys_and_only_active_dags(env: Env) -> None:
    env.write_dag("manual.py", _dag("manual", "None"))
    gone = env.write_dag("gone.py", _dag("gone"))
    rows = _json(env, "dags", "list")
    assert [row["dag_id"] for row in rows] == ["gone", "manual"]
    assert all(set(row) == {"dag_id", "fileloc", "schedule", "is_paused", "next_dagrun"} for row in rows)
    gone_row = rows[0]
    assert gone_row["is_paused"] is False and isinstance(gone_row["next_dagrun"], str)
    assert rows[1]["schedule"] is None and rows[1]["next_dagrun"] is None
    gone.unlink()
    assert [row["dag_id"] for row in _json(env, "dags", "list")] == ["manual"]


def test_dags_list_with_nothing_loaded(env: Env) -> None:
    assert env.run_cli("dags", "list").stdout.strip() == "No data found"
    assert _json(env, "dags", "list") == []


def test_dags_folder_option_reads_another_folder(env: Env, tmp_path: Path) -> None:
    other = tmp_path / "other_dags"
    other.mkdir()
    (other / "elsewhere.py").write_text(_dag("elsewhere"))
    rows = _json(env, "dags", "list", "--dags-folder", str(other))
    assert [(row["dag_id"], row["fileloc"]) for row in rows] == [("elsewhere", str(other / "elsewhere.py"))]


def test_missing_dags_folder_is_a_usage_error(env: Env, tmp_path: Path) -> None:
    result = env.run_cli("dags", "list", "--dags-folder", str(tmp_path / "nope"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_json_stays_clean_when_a_dag_file_prints_and_errors_exist(env: Env) -> None:
    env.write_dag("chatty.py", "print('hello at import')\n" + _dag("chatty"))
    env.write_dag("broken.py", "raise RuntimeError('nope')\n")
    result = env.run_cli("dags", "list", "--output", "json")
    assert [row["dag_id"] for row in json.loads(result.stdout)] == ["chatty"]
    assert "hello at import" in result.stderr
    assert "1 DAG file(s) failed to import" in result.stderr and "list-import-errors" in result.stderr


def test_list_import_errors_table_and_json(env: Env) -> None:
    path = env.write_dag("broken.py", HEADER + "\n\nundefined_name\n")
    table = env.run_cli("dags", "list-import-errors")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["filename", "error"]
    assert lines[2].startswith(str(path)) and f"{path}:5: NameError" in lines[2]
    widths = {len(line.split("|")[0]) for line in lines if "|" in line}
    assert len(widths) == 1  # traceback lines stay inside the error column
    rows = _json(env, "dags", "list-import-errors")
    assert len(rows) == 1 and set(rows[0]) == {"filename", "error"}
    assert rows[0]["filename"] == str(path) and "name 'undefined_name' is not defined" in str(
        rows[0]["error"]
    )


def test_list_import_errors_when_all_is_well(env: Env) -> None:
    env.write_dag("fine.py", _dag("fine"))
    assert env.run_cli("dags", "list-import-errors").stdout.strip() == "No data found"
    assert _json(env, "dags", "list-import-errors") == []


def test_show_text(env: Env) -> None:
    env.write_dag("etl.py", _dag("etl"))
    result = env.run_cli("dags", "show", "etl")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "DAG etl (schedule: @daily)",
        "  clean",
        "  extract",
        "  load  <- clean, extract",
    ]


def test_show_mermaid_and_dot(env: Env) -> None:
    env.write_dag("etl.py", _dag("etl"))
    mermaid = env.run_cli("dags", "show", "etl", "--format", "mermaid").stdout.splitlines()
    assert mermaid == ["graph LR", "    clean --> load", "    extract --> load"]
    dot = env.run_cli("dags", "show", "etl", "--format", "dot").stdout
    assert dot.startswith('digraph "etl" {') and dot.rstrip().endswith("}")
    assert '"clean" -> "load";' in dot and '"extract" -> "load";' in dot


def test_show_mermaid_gives_awkward_ids_safe_node_names(env: Env) -> None:
    body = (
        "    a = BashOperator(task_id='fetch.v2-eu', bash_command='echo')\n"
        "    b = BashOperator(task_id='end', bash_command='echo')\n"
        "    c = BashOperator(task_id='alone', bash_command='echo')\n"
        "    a >> b\n"
    )
    env.write_dag("odd.py", _dag("odd", body=body))
    lines = env.run_cli("dags", "show", "odd", "--format", "mermaid").stdout.splitlines()
    assert lines[0] == "graph LR"
    assert '["fetch.v2-eu"]' in "\n".join(lines) and '["end"]' in "\n".join(lines)
    assert "    alone" in lines
    assert not any(" end " in f" {line} " for line in lines if "-->" in line)


def test_show_unknown_dag_fails_with_one_clear_line(env: Env) -> None:
    result = env.run_cli("dags", "show", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: DAG 'nope' not found; run `minisched dags list` to see the DAGs"


def test_show_rejects_an_unknown_format(env: Env) -> None:
    env.write_dag("etl.py", _dag("etl"))
    assert env.run_cli("dags", "show", "etl", "--format", "png").exit_code == 2


def _paused(dag_id: str) -> bool:
    with create_session() as session:
        value = session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id))
    assert value is not None
    return value


def test_pause_and_unpause_are_recorded_in_the_audit_log(env: Env) -> None:
    env.write_dag("etl.py", _dag("etl"))
    result = env.run_cli("dags", "pause", "etl")
    assert result.exit_code == 0 and "paused" in result.stdout
    assert _paused("etl") is True
    assert env.run_cli("dags", "unpause", "etl").exit_code == 0
    assert _paused("etl") is False
    with create_session() as session:
        rows = session.execute(select(Log.event, Log.dag_id, Log.extra).order_by(Log.id)).all()
    assert [(event, dag_id) for event, dag_id, _ in rows] == [
        ("cli_dags_pause", "etl"),
        ("cli_dags_unpause", "etl"),
    ]
    assert json.loads(rows[0][2])["dag_id"] == "etl"


@pytest.mark.parametrize("command", ["pause", "unpause"])
def test_pausing_an_unknown_dag_fails_without_writing(env: Env, command: str) -> None:
    result = env.run_cli("dags", command, "missing")
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == "Error: DAG 'missing' not found; run `minisched dags list` to see the DAGs"
    )
    with create_session() as session:
        assert session.scalars(select(Log.event)).all() == []


@pytest.mark.parametrize("command", ["list", "list-import-errors", "show", "pause", "unpause"])
def test_every_command_has_help_and_a_dags_folder_option(env: Env, command: str) -> None:
    result = env.run_cli("dags", command, "--help")
    assert result.exit_code == 0 and "--dags-folder" in result.stdout


def test_the_user_story_in_real_processes(env: Env) -> None:
    """Drop a file, see it; break it, see the line; fix it, the error is gone."""
    path = env.write_dag("etl.py", _dag("etl"))
    listed = env.run_process("dags", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [row["dag_id"] for row in json.loads(listed.stdout)] == ["etl"]

    path.write_text(_dag("etl").replace("[extract, clean] >> load", "[extract, clean] >> load >>"))
    broken = env.run_process("dags", "list-import-errors")
    assert broken.returncode == 0 and f"{path}:7: SyntaxError" in broken.stdout

    path.write_text(_dag("etl"))
    fixed = env.run_process("dags", "list-import-errors", "--output", "json")
    assert json.loads(fixed.stdout) == []
