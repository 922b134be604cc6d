"""Loading a DAG folder: which files are imported, who owns a dag id, what disappears, what it costs."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from minisched.dagfiles.plan import list_dag_files
from minisched.dagfiles.refresh import FolderRefresher
from minisched.db.session import create_session
from minisched.models import DagFile, DagRun, SerializedDagModel
from tests.conftest import Env
from tests.dagfiles.helpers import (
    HEADER,
    count_statements,
    dag_block,
    dag_rows,
    dag_source,
    import_errors,
    imports_counted,
    refresh,
)
from tests.scheduler.helpers import wait_until


def _touch(path: Path, delta: float = 10.0) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime + delta, stat.st_mtime + delta))


def test_walk_is_recursive_sorted_and_skips_private_names(tmp_path: Path) -> None:
    for name in [
        "b.py",
        "a.py",
        "notes.txt",
        "_private.py",
        ".hidden.py",
        "sub/c.py",
        "sub/deeper/d.py",
        "_skipped_dir/e.py",
        ".git/f.py",
        "sub/__pycache__/g.py",
    ]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    found = [Path(p).relative_to(tmp_path).as_posix() for p in list_dag_files(tmp_path)]
    assert found == ["a.py", "b.py", "sub/c.py", "sub/deeper/d.py"]


def test_walk_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_dag_files(tmp_path / "nope") == []


def test_dropped_file_loads_its_dags(env: Env) -> None:
    path = env.write_dag("etl.py", dag_source("etl", schedule='"0 * * * *"'))
    report = refresh(env.dags_folder)
    assert (report.files_seen, report.files_imported, report.dags_synced, report.errors) == (1, 1, 1, 0)
    row = dag_rows()["etl"]
    assert (row.fileloc, row.schedule, row.is_active, row.is_paused) == (str(path), "0 * * * *", True, False)
    with create_session() as session:
        serialized = session.get(SerializedDagModel, "etl")
        dag_file = session.get(DagFile, str(path))
    assert serialized is not None and [t["task_id"] for t in serialized.data["tasks"]] == ["t0", "t1"]
    assert dag_file is not None and dag_file.dag_ids == ["etl"] and dag_file.size == path.stat().st_size


def test_unchanged_folder_costs_one_select_no_write_no_import(env: Env, tmp_path: Path) -> None:
    counter = tmp_path / "imports"
    for i in range(5):
        env.write_dag(f"dag_{i}.py", dag_source(f"dag_{i}", counter=counter))
    env.write_dag("broken.py", "raise RuntimeError('still broken')\n")
    refresh(env.dags_folder)
    assert imports_counted(counter) == 5
    with count_statements() as log:
        report = refresh(env.dags_folder)
    assert report.files_imported == 0 and report.files_seen == 6
    assert log.writes == []
    assert len(log.statements) == len(log.selects) == 1
    assert imports_counted(counter) == 5


def test_touched_file_with_same_content_updates_its_stat_without_import(env: Env, tmp_path: Path) -> None:
    counter = tmp_path / "imports"
    path = env.write_dag("etl.py", dag_source("etl", counter=counter))
    refresh(env.dags_folder)
    _touch(path)
    with count_statements() as log:
        report = refresh(env.dags_folder)
    assert report.files_imported == 0 and imports_counted(counter) == 1
    assert len(log.writes) == 1 and len(log.on("dag_file")) == 1
    with count_statements() as log:
        refresh(env.dags_folder)
    assert log.writes == []


def test_changed_file_is_imported_again(env: Env, tmp_path: Path) -> None:
    counter = tmp_path / "imports"
    path = env.write_dag("etl.py", dag_source("etl", counter=counter))
    refresh(env.dags_folder)
    path.write_text(dag_source("etl", counter=counter, tasks=3, dag_args=", description='v2'"))
    _touch(path)
    report = refresh(env.dags_folder)
    assert report.files_imported == 1 and imports_counted(counter) == 2
    assert dag_rows()["etl"].description == "v2"
    with create_session() as session:
        serialized = session.get(SerializedDagModel, "etl")
    assert serialized is not None and len(serialized.data["tasks"]) == 3


def test_removed_file_deactivates_its_dags_and_keeps_history(env: Env) -> None:
    path = env.write_dag("etl.py", dag_source("etl"))
    refresh(env.dags_folder)
    with create_session() as session:
        session.execute(
            insert(DagRun),
            [
                {
                    "dag_id": "etl",
                    "run_id": "manual__1",
                    "run_type": "manual",
                    "state": "success",
                    "logical_date": datetime(2024, 1, 2, tzinfo=UTC),
                }
            ],
        )
    path.unlink()
    report = refresh(env.dags_folder)
    assert report.dags_deactivated == 1
    assert dag_rows()["etl"].is_active is False
    with create_session() as session:
        assert session.scalar(select(DagRun.run_id).where(DagRun.dag_id == "etl")) == "manual__1"
        assert session.scalars(select(DagFile.fileloc)).all() == []


def test_reappearing_dag_is_active_again_and_keeps_its_paused_flag(env: Env) -> None:
    path = env.write_dag("etl.py", dag_source("etl"))
    refresh(env.dags_folder)
    env.run_cli("dags", "pause", "etl")
    path.unlink()
    refresh(env.dags_folder)
    env.write_dag("elsewhere/etl_moved.py", dag_source("etl"))
    refresh(env.dags_folder)
    row = dag_rows()["etl"]
    assert row.is_active is True and row.is_paused is True
    assert row.fileloc == str(env.dags_folder / "elsewhere" / "etl_moved.py")


def test_dag_removed_from_its_file_is_deactivated(env: Env) -> None:
    path = env.write_dag("two.py", HEADER + dag_block("first") + dag_block("second"))
    refresh(env.dags_folder)
    assert {d for d, row in dag_rows().items() if row.is_active} == {"first", "second"}
    path.write_text(dag_source("first", tasks=1))
    report = refresh(env.dags_folder)
    assert report.dags_deactivated == 1
    assert {d: row.is_active for d, row in dag_rows().items()} == {"first": True, "second": False}


def test_duplicate_dag_id_across_files_fails_the_second_file(env: Env) -> None:
    first = env.write_dag("a_first.py", dag_source("shared", dag_args=", description='first'"))
    second = env.write_dag(
        "b_second.py", dag_source("shared", dag_args=", description='second'") + dag_block("own")
    )
    report = refresh(env.dags_folder)
    assert report.errors == 1
    rows = dag_rows()
    assert rows["shared"].fileloc == str(first) and rows["shared"].description == "first"
    assert rows["own"].is_active  # the second file's other DAGs still load
    error = import_errors()[str(second)]
    assert "duplicate dag_id 'shared'" in error and str(first) in error and str(second) in error


def test_current_owner_keeps_a_dag_id_when_a_new_file_copies_it(env: Env) -> None:
    owner = env.write_dag("z_owner.py", dag_source("shared"))
    refresh(env.dags_folder)
    copy = env.write_dag("a_copy.py", dag_source("shared"))  # earlier in walk order, but newer
    refresh(env.dags_folder)
    assert dag_rows()["shared"].fileloc == str(owner)
    assert set(import_errors()) == {str(copy)}


def test_when_the_owner_goes_the_other_file_takes_over_and_its_error_clears(env: Env, tmp_path: Path) -> None:
    counter = tmp_path / "imports"
    first = env.write_dag("a_first.py", dag_source("shared"))
    second = env.write_dag("b_second.py", dag_source("shared", counter=counter))
    refresh(env.dags_folder)
    assert set(import_errors()) == {str(second)}
    first.unlink()
    report = refresh(env.dags_folder)
    assert imports_counted(counter) == 2  # the unchanged file was imported again to take over
    assert report.dags_deactivated == 0
    row = dag_rows()["shared"]
    assert row.fileloc == str(second) and row.is_active
    assert import_errors() == {}


def test_dag_files_can_import_sibling_helpers_and_a_changed_helper_reloads_them(env: Env) -> None:
    helper = env.write_dag("common.py", "DESCRIPTION = 'v1'\n")
    env.write_dag("_private_helper.py", "RETRIES = 2\n")
    env.write_dag(
        "team/uses_helper.py",
        dag_source(
            "uses_helper",
            dag_args=", description=common.DESCRIPTION, default_args={'retries': _private_helper.RETRIES}",
        ).replace("from minisched", "import common, _private_helper\nfrom minisched"),
    )
    report = refresh(env.dags_folder)
    assert report.errors == 0, import_errors()
    assert dag_rows()["uses_helper"].description == "v1"
    helper.write_text("DESCRIPTION = 'v2'\n")
    _touch(helper)
    refresh(env.dags_folder)
    assert dag_rows()["uses_helper"].description == "v2"


def test_touching_a_failed_file_retries_it(env: Env, tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    path = env.write_dag(
        "waits.py",
        f"import os\nassert os.path.exists({str(flag)!r}), 'not ready'\n" + dag_source("waits"),
    )
    refresh(env.dags_folder)
    assert "not ready" in import_errors()[str(path)]
    flag.write_text("")
    refresh(env.dags_folder)
    assert str(path) in import_errors()  # unchanged file: not retried on its own
    _touch(path)
    refresh(env.dags_folder)
    assert import_errors() == {} and dag_rows()["waits"].is_active


def test_prints_at_import_go_to_stderr(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.write_dag("chatty.py", "print('hello from the DAG file')\n" + dag_source("chatty"))
    refresh(env.dags_folder)
    captured = capsys.readouterr()
    assert "hello from the DAG file" in captured.err and captured.out == ""


def test_a_removed_folder_deactivates_what_it_held(env: Env) -> None:
    env.write_dag("team/etl.py", dag_source("etl"))
    refresh(env.dags_folder)
    shutil.rmtree(env.dags_folder / "team")
    report = refresh(env.dags_folder)
    assert report.files_seen == 0 and report.dags_deactivated == 1


def test_another_folder_is_read_without_touching_this_one(env: Env, tmp_path: Path) -> None:
    env.write_dag("etl.py", dag_source("etl"))
    refresh(env.dags_folder)
    other = tmp_path / "other"
    other.mkdir()
    (other / "extra.py").write_text(dag_source("extra"))
    (other / "copy.py").write_text(dag_source("etl"))
    report = refresh(other)
    assert report.dags_deactivated == 0
    rows = dag_rows()
    assert rows["etl"].is_active and rows["etl"].fileloc == str(env.dags_folder / "etl.py")
    assert rows["extra"].is_active
    assert f"already defined in {env.dags_folder / 'etl.py'}" in import_errors()[str(other / "copy.py")]
    report = refresh(env.dags_folder)  # and back: the other folder's DAGs stay, as their files do
    assert report.dags_deactivated == 0 and dag_rows()["extra"].is_active


def _many_dags(env: Env, *, files: int, per_file: int, version: str) -> None:
    for f in range(files):
        blocks = [dag_block(f"dag_{f}_{d}", dag_args=f", description={version!r}") for d in range(per_file)]
        env.write_dag(f"file_{f}.py", HEADER + "".join(blocks))


def test_statement_count_is_bounded_for_100_dags(env: Env) -> None:
    _many_dags(env, files=10, per_file=10, version="v1")
    with count_statements() as first:
        report = refresh(env.dags_folder)
    assert report.dags_synced == 100 and report.errors == 0, import_errors()
    with count_statements() as unchanged:
        refresh(env.dags_folder)
    _many_dags(env, files=10, per_file=10, version="v2")
    for path in env.dags_folder.glob("*.py"):
        _touch(path)
    with count_statements() as changed:
        report = refresh(env.dags_folder)
    assert report.dags_synced == 100
    counts = [len(log.statements) for log in (first, unchanged, changed)]
    print(f"statements for 100 DAGs: new={counts[0]} unchanged={counts[1]} changed={counts[2]}")
    assert len(first.statements) <= 10
    assert len(unchanged.statements) == 1 and unchanged.writes == []
    assert len(changed.statements) <= 10
    assert {row.description for row in dag_rows().values()} == {"v2"}


def test_a_change_written_by_another_refresh_meanwhile_is_not_written_twice(env: Env) -> None:
    env.write_dag("etl.py", dag_source("etl"))
    slow = FolderRefresher(env.dags_folder, interval=0.0)
    try:
        assert slow._start()  # planned and sent to its processor
        while not slow._collect(wait=0.5):
            pass
        assert refresh(env.dags_folder).files_imported == 1  # the other refresh writes it first
        with count_statements() as log:
            report = slow._apply()
    finally:
        slow.close()
    assert report.files_imported == 0 and log.writes == []
    assert dag_rows()["etl"].is_active


def test_poll_never_waits_for_a_slow_file(env: Env, tmp_path: Path) -> None:
    release = tmp_path / "release"
    env.write_dag("fine.py", dag_source("fine"))
    env.write_dag(
        "slow.py",
        f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.02)\n"
        + dag_source("slow"),
    )
    refresher = FolderRefresher(env.dags_folder, interval=0.0)
    try:
        for _ in range(20):
            assert refresher.poll() is None  # parsing goes on elsewhere; each poll returns at once
        assert dag_rows() == {}
        release.write_text("")
        report = wait_until(refresher.poll, message="the refresh to be applied")
    finally:
        refresher.close()
    assert report.dags_synced == 2 and set(dag_rows()) == {"fine", "slow"}
