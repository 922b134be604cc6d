"""Optional (`--with-airflow`): Airflow 2.10.5 and minisched side by side, as ratios taken in one run.

Creates (once) a throwaway venv with `pip install apache-airflow==2.10.5` (~300 MB download) in
$MINISCHED_BENCH_AIRFLOW_VENV or ~/.cache/minisched-bench/airflow-2.10.5; Airflow is never a dependency
of minisched. AIRFLOW_HOME is a temporary folder, examples off, default SQLite metadata DB
(`airflow db migrate` first); minisched runs on SQLite too.

- `--help` of both CLIs, median of 5 (3 with --quick), the two timed in turn (this also brings
  both installations into the page cache);
- `dags test DAG` of both as subprocesses, on no-op PythonOperator DAGs of 10, 100 and 1,000 tasks
  (10 only with --quick), parallel and chain, `schedule=None`; each DAG in a folder of its own. The
  DAG is parsed before timing: minisched's `dags test` runs once untimed, which records the parse in
  its database (Airflow's `dags test` parses its folder every time, so it has nothing to warm). Then
  median of 3 (1 for 1,000 tasks: Airflow takes minutes), the two in turn so that a change of load
  hits both.

Each comparison is a figure `vs_airflow.*.speedup` = Airflow's seconds / minisched's seconds, with
issue 15's target: 5x for 10 tasks, 10x for 100, 25x for 1,000; 15x for `--help`. An Airflow command
still running after AIRFLOW_BUDGET_S (Airflow's 1,000-task chain on a loaded machine) is stopped: its
figure is then the budget, and the speedup a lower bound (the note says so).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_startup import minisched_command
from benchmarks.common import BenchContext, Figure, Shape, at_least, dag_source, new_home, write_dag

AIRFLOW_VERSION = "2.10.5"
SHAPES: tuple[Shape, ...] = ("parallel", "chain")
#: Tasks -> minimum speedup over Airflow's `dags test` (issue 15).
DAGS_TEST_TARGETS = {10: 5.0, 100: 10.0, 1000: 25.0}
HELP_TARGET = 15.0
AIRFLOW_BUDGET_S = 900.0

AIRFLOW_DAG = """\
from datetime import datetime

from airflow import DAG
from airflow.operators.python import PythonOperator


def noop():
    return None


with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1), catchup=False, max_active_tasks={n}):
    tasks = [PythonOperator(task_id=f"t{{i}}", python_callable=noop) for i in range({n})]
    if {chain!r}:
        for up, down in zip(tasks, tasks[1:]):
            up >> down
"""


def venv_dir() -> Path:
    default = Path.home() / ".cache" / "minisched-bench" / f"airflow-{AIRFLOW_VERSION}"
    return Path(os.environ.get("MINISCHED_BENCH_AIRFLOW_VENV") or default)


def ensure_airflow(ctx: BenchContext) -> Path:
    venv = venv_dir()
    airflow = venv / "bin" / "airflow"
    if airflow.exists():
        return venv
    ctx.log(f"  creating {venv} with apache-airflow=={AIRFLOW_VERSION} (one-off, ~300 MB)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"apache-airflow=={AIRFLOW_VERSION}"], check=True
    )
    return venv


class Airflow:
    """One AIRFLOW_HOME with a migrated SQLite database; each DAG gets a folder of its own."""

    def __init__(self, ctx: BenchContext, venv: Path) -> None:
        self.home = ctx.tempdir("airflow_home")
        self.binary = str(venv / "bin" / "airflow")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINISCHED_"))}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
            PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
        )
        self.env = env
        timed([self.binary, "db", "migrate"], env)

    def add_dag(self, dag_id: str, n: int, shape: Shape) -> dict[str, str]:
        folder = self.home / f"dags_{dag_id}"
        folder.mkdir()
        (folder / f"{dag_id}.py").write_text(AIRFLOW_DAG.format(dag_id=dag_id, n=n, chain=shape == "chain"))
        return {**self.env, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}


def run(ctx: BenchContext) -> list[Figure]:
    airflow = Airflow(ctx, ensure_airflow(ctx))
    figures = help_figures(ctx, airflow)
    for n in (10,) if ctx.quick else tuple(DAGS_TEST_TARGETS):
        for shape in SHAPES:
            figures += dags_test_figures(ctx, airflow, n, shape)
    return figures


def help_figures(ctx: BenchContext, airflow: Airflow) -> list[Figure]:
    repeats = ctx.size(5, 3)
    ms_env = {k: v for k, v in os.environ.items() if not k.startswith("MINISCHED_")}
    af_s, ms_s = side_by_side(
        lambda: timed([airflow.binary, "--help"], airflow.env),
        lambda: timed([*minisched_command(), "--help"], ms_env),
        repeats,
    )
    ctx.log(f"  --help: airflow {af_s * 1e3:.0f} ms, minisched {ms_s * 1e3:.0f} ms = {af_s / ms_s:.1f}x")
    params = f"median of {repeats}, in turn"
    return [
        Figure("airflow.help.wall_s", af_s, "s", params=params),
        Figure("vs_airflow.help.minisched_wall_s", ms_s, "s", params=params),
        speedup("vs_airflow.help.speedup", (af_s, ms_s), HELP_TARGET, params, "`--help`"),
    ]


def dags_test_figures(ctx: BenchContext, airflow: Airflow, n: int, shape: Shape) -> list[Figure]:
    dag_id = f"{shape}_{n}"
    repeats = 1 if n >= 1000 else ctx.size(3, 1)
    af_env = airflow.add_dag(dag_id, n, shape)
    af_test = [airflow.binary, "dags", "test", dag_id]
    with new_home(ctx, f"vs_airflow_{dag_id}") as home:
        write_dag(home.dags, dag_id, dag_source(dag_id, n, shape))
        ms_test = [*minisched_command(), "dags", "test", dag_id]
        ms_env = home.environ()
        timed(ms_test, ms_env)  # parses the DAG file and records it
        af_s, ms_s = side_by_side(
            lambda: timed(af_test, af_env, budget=AIRFLOW_BUDGET_S), lambda: timed(ms_test, ms_env), repeats
        )
    ctx.log(f"  dags test {dag_id}: airflow {af_s:.2f}s, minisched {ms_s:.2f}s = {af_s / ms_s:.1f}x")
    params = f"N={n}, {shape}, median of {repeats}, in turn"
    if af_s >= AIRFLOW_BUDGET_S:
        params += f"; Airflow stopped after {AIRFLOW_BUDGET_S:.0f} s: a lower bound"
    name = f"dags_test.{shape}.{n}"
    return [
        Figure(f"airflow.{name}.wall_s", af_s, "s", params=params),
        Figure(f"vs_airflow.{name}.minisched_wall_s", ms_s, "s", params=params),
        speedup(
            f"vs_airflow.{name}.speedup",
            (af_s, ms_s),
            DAGS_TEST_TARGETS[n],
            params,
            "`dags test`, DAG parsed",
        ),
    ]


def speedup(name: str, seconds: tuple[float, float], target: float, params: str, note: str) -> Figure:
    """Airflow's seconds / minisched's seconds (`seconds` holds them in that order)."""
    airflow_s, minisched_s = seconds
    ratio = airflow_s / minisched_s
    return Figure(
        name,
        ratio,
        "x",
        f">= {target:g}",
        at_least(ratio, target),
        params,
        note=f"{note}: {airflow_s:.3g} s / {minisched_s:.3g} s",
    )


def side_by_side(
    airflow: Callable[[], float], minisched: Callable[[], float], repeats: int
) -> tuple[float, float]:
    """Medians of both, timed in turn (Airflow first) so that a change of load hits both."""
    af: list[float] = []
    ms: list[float] = []
    for _ in range(repeats):
        af.append(airflow())
        ms.append(minisched())
    return statistics.median(af), statistics.median(ms)


def timed(command: list[str], env: dict[str, str], budget: float | None = None) -> float:
    """Wall seconds of `command`; with a budget, a command still running then is stopped and the
    budget returned."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=budget)
    except subprocess.TimeoutExpired:
        assert budget is not None
        return budget
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds
