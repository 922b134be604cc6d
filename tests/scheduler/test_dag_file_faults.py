"""A hostile DAG file never hurts the scheduler: real schedulers, real faults at import.

Each fault becomes one import error naming the file and the cause, while the scheduler keeps
heartbeating and runs a good DAG's tasks exactly once (counted with a probe file). Where the fault
has nothing to do with the database, it runs on SQLite only; all of them at once run on both backends.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import BACKENDS, Env
from tests.dagfiles.helpers import import_errors
from tests.scheduler.helpers import Proc, Procs, finished_runs, jobs, wait_until

#: Short limits, so that the timeout and memory cases end quickly.
LIMITS = {
    "MINISCHED_DAG_FILE_PROCESSOR_TIMEOUT": "3",
    "MINISCHED_DAG_FILE_PROCESSOR_MEMORY_LIMIT_MB": "256",
}

FAULTS: dict[str, tuple[str, str]] = {
    "os_exit": ("import os\nos._exit(1)\n", "exited with code 1 during import"),
    "keyboard_interrupt": ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    "base_exception": ("raise BaseException('at import')\n", "BaseException: at import"),
    "system_exit": ("raise SystemExit(0)\n", "SystemExit"),
    "fork": ("import os\nos.fork()\n", "called os.fork() at import"),
    "infinite_loop": ("while True:\n    pass\n", "timed out after 3 s"),
    "swallowing_loop": (
        "import time\nwhile True:\n    try:\n        time.sleep(0.01)\n"
        "    except BaseException:\n        pass\n",
        "timed out after 3 s",
    ),
    "sleep_60": ("import time\ntime.sleep(60)\n", "timed out after 3 s"),
    "allocate_5gb": (
        "chunks = [bytearray(32 * 1024 ** 2) for _ in range(160)]\n",
        "exceeded the memory limit of 256 MiB",
    ),
    "kill_parent": (
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "the DAG file processor was killed by SIGKILL while importing this file",
    ),
    "stop_parent": (
        "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n",
        "the DAG file processor stopped answering while importing this file",
    ),
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param != "sqlite" and "both_backends" not in request.keywords:
        pytest.skip("a fault of the DAG file alone does not depend on the database; checked on SQLite")
    return str(request.param)


def _good_dag(probe: Path) -> str:
    return textwrap.dedent(
        f"""\
        from datetime import datetime, timezone
        from minisched import DAG, BashOperator

        with DAG("good", schedule="@once", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
            first = BashOperator(task_id="first", bash_command="echo first >> {probe}")
            second = BashOperator(task_id="second", bash_command="echo second >> {probe}")
            first >> second
        """
    )


def _bad_dag(source: str) -> str:
    """The fault at top level, then a DAG that must never be loaded from this file."""
    tail = textwrap.dedent(
        """\
        from datetime import datetime, timezone
        from minisched import DAG, BashOperator

        with DAG("never_loaded", schedule="@once", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
            BashOperator(task_id="t", bash_command="echo should-not-run")
        """
    )
    return source + tail


def _import_errors() -> dict[str, str]:
    """The import errors by file; the DAG of the file that never loads is never recorded."""
    from minisched.db.session import create_session
    from minisched.models import DagModel

    with create_session() as session:
        assert session.scalar(select(DagModel.dag_id).where(DagModel.dag_id == "never_loaded")) is None
    return import_errors()


def _heartbeat_advances(proc: Proc) -> None:
    first = jobs()[-1].latest_heartbeat
    wait_until(
        lambda: jobs()[-1].latest_heartbeat > first and proc.popen.poll() is None,
        message="the scheduler to heartbeat again",
    )


def _run_with_faults(env: Env, procs: Procs, tmp_path: Path, faults: dict[str, tuple[str, str]]) -> None:
    probe = tmp_path / "probe"
    env.write_dag("good.py", _good_dag(probe))
    paths = {name: env.write_dag(f"bad_{name}.py", _bad_dag(source)) for name, (source, _) in faults.items()}
    proc = procs.scheduler(extra_env=LIMITS)
    # The good DAG is written with the bad files' refresh, which waits for their timeouts: patience.
    try:
        runs = wait_until(lambda: finished_runs("good"), timeout=240, message="the good DAG's run to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; import errors: {_import_errors()}; output:\n{proc.output()}") from None
    assert [run.state for run in runs] == ["success"], proc.output()
    errors = wait_until(
        lambda: (found := _import_errors()) and set(map(str, paths.values())) <= set(found) and found,
        message="one import error per bad file",
    )
    for name, (_, cause) in faults.items():
        error = errors[str(paths[name])]
        assert error.startswith(str(paths[name])) and cause in error, (name, error)
    assert proc.popen.poll() is None, proc.output()
    _heartbeat_advances(proc)
    assert sorted(probe.read_text().split()) == ["first", "second"]  # each task ran exactly once
    assert proc.stop() == 0
    proc.assert_clean_exit()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_hostile_dag_file_becomes_one_import_error(
    env: Env, procs: Procs, tmp_path: Path, fault: str
) -> None:
    _run_with_faults(env, procs, tmp_path, {fault: FAULTS[fault]})


@pytest.mark.both_backends
def test_all_hostile_files_at_once(env: Env, procs: Procs, tmp_path: Path) -> None:
    """Several files importing at the moment one kills the processor: the culprit is found, one at a time."""
    _run_with_faults(env, procs, tmp_path, FAULTS)
