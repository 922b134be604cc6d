"""5. Parsing a folder of 1,000 small one-DAG files: the first load, then an unchanged reload.

`refresh_dag_folder` runs from this process: plan and apply in short transactions, the files parsed by the
DAG file processor's child processes (starting its server is part of the first load's time). Imports are
counted by a module-level side effect: every DAG file appends one byte to a counter file when it is
executed. Writes are INSERT/UPDATE/DELETE statements seen by `before_cursor_execute`.
Also timed: `minisched dags list` over the loaded folder (a subprocess, as a user runs it).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import BenchContext, Figure, Home, at_most, counting, in_process, new_home, run_cli

RATIO_TARGET = 0.10

SMALL_DAG = """\
from datetime import datetime, timezone

from minisched.authoring.dag import DAG
from minisched.authoring.operators import PythonOperator

with open({counter!r}, "a") as _counter:
    _counter.write(".")


def noop():
    return None


with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    extract = PythonOperator(task_id="extract", python_callable=noop)
    extract >> PythonOperator(task_id="load", python_callable=noop)
"""


def write_small_dags(folder: Path, count: int, counter: Path) -> None:
    for i in range(count):
        dag_id = f"small_{i:04d}"
        (folder / f"{dag_id}.py").write_text(SMALL_DAG.format(counter=str(counter), dag_id=dag_id))


def imports_so_far(counter: Path) -> int:
    return counter.stat().st_size if counter.exists() else 0


def run(ctx: BenchContext) -> list[Figure]:
    files = ctx.size(1000, 50)
    with new_home(ctx, "parsing") as home:
        counter = home.root / "imports.count"
        write_small_dags(home.dags, files, counter)
        first = _refresh(home, counter)
        second = _refresh(home, counter)
        list_seconds, _ = run_cli(["dags", "list"], home.environ())
    ratio = second[0] / first[0]
    params = f"{files} one-DAG files"
    ctx.log(
        f"  first {first[0]:.3f}s ({first[1]} imports, {first[2]} writes), "
        f"reload {second[0]:.4f}s ({second[1]} imports, {second[2]} writes), ratio {ratio:.3f}, "
        f"dags list {list_seconds:.2f}s"
    )
    return [
        Figure("parsing.first.seconds", first[0], "s", params=params),
        Figure("parsing.first.imports", first[1], "imports", params=params),
        Figure("parsing.first.writes", first[2], "statements", params=params, note="INSERT/UPDATE/DELETE"),
        Figure("parsing.reload.seconds", second[0], "s", params=params),
        Figure("parsing.reload.imports", second[1], "imports", "== 0", second[1] == 0, params),
        Figure("parsing.reload.writes", second[2], "statements", "== 0", second[2] == 0, params),
        Figure("parsing.reload.statements", second[3], "statements", params=params, note="all statements"),
        Figure(
            "parsing.reload_vs_first",
            ratio * 100,
            "%",
            f"< {RATIO_TARGET * 100:.0f}",
            at_most(ratio, RATIO_TARGET - 1e-12),
            params,
        ),
        Figure(
            "parsing.dags_list.seconds",
            list_seconds,
            "s",
            params=params,
            note="`minisched dags list` subprocess, folder loaded",
        ),
    ]


def _refresh(home: Home, counter: Path) -> tuple[float, int, int, int]:
    """(seconds, imports, write statements, statements) of one refresh."""
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import get_engine

    with in_process(home):
        engine = get_engine()
        with engine.connect():
            pass  # open the pooled connection first: connecting is not parsing
        before = imports_so_far(counter)
        with counting(engine) as count:
            started = time.perf_counter()
            refresh_dag_folder(home.dags)
            seconds = time.perf_counter() - started
    return seconds, imports_so_far(counter) - before, count.writes, count.statements
