"""Optional (`--with-airflow`): Airflow 2.10.5 and minisched side by side on the same `dags test` shapes.

Creates (once) a throwaway venv with `pip install apache-airflow==2.10.5` (~300 MB download) in
$MINISCHED_BENCH_AIRFLOW_VENV or ~/.cache/minisched-bench/airflow-2.10.5; Airflow is never a dependency
of minisched. AIRFLOW_HOME is a temporary folder, examples off, default SQLite metadata DB
(`airflow db migrate` first). Shapes: 100 no-op PythonOperators, parallel and chain, `schedule=None`.

- wall: `airflow dags test DAG` / `minisched dags test DAG` as subprocesses, median of 3;
- in-process: `dag.test()` timed inside the Airflow venv / `run_dag_test` here, per task.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_throughput import _dags_test_in_process, _dags_test_wall
from benchmarks.common import BenchContext, Figure, Shape, dag_source, new_home, write_dag

AIRFLOW_VERSION = "2.10.5"
N = 100

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

IN_PROCESS = """\
import json, sys, time
from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1], include_examples=False)
dag = bag.get_dag(sys.argv[2])
started = time.perf_counter()
dag.test()
print(json.dumps({"seconds": time.perf_counter() - started}))
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


def run(ctx: BenchContext) -> list[Figure]:
    venv = ensure_airflow(ctx)
    repeats = ctx.size(3, 1)
    home = ctx.tempdir("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINISCHED_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
    )
    airflow = str(venv / "bin" / "airflow")
    figures: list[Figure] = []
    version = statistics.median(_timed([airflow, "version"], env) for _ in range(repeats))
    figures.append(Figure("airflow.version", version * 1e3, "ms", params=f"median of {repeats}"))
    _timed([airflow, "db", "migrate"], env)
    shapes: tuple[Shape, ...] = ("parallel", "chain")
    for shape in shapes:
        dag_id = f"af_{shape}_{N}"
        (dags / f"{dag_id}.py").write_text(AIRFLOW_DAG.format(dag_id=dag_id, n=N, chain=shape == "chain"))
        af_wall = statistics.median(_timed([airflow, "dags", "test", dag_id], env) for _ in range(repeats))
        af_inproc = statistics.median(_airflow_in_process(venv, env, dags, dag_id) for _ in range(repeats))
        with new_home(ctx, f"vs_airflow_{shape}") as ms_home:
            ms_id = f"{shape}_{N}"
            write_dag(ms_home.dags, ms_id, dag_source(ms_id, N, shape))
            ms_wall = statistics.median(_dags_test_wall(ms_home, ms_id) for _ in range(repeats))
            ms_inproc = statistics.median(_dags_test_in_process(ms_home, ms_id) for _ in range(repeats))
        params = f"N={N}, {shape}, median of {repeats}"
        ctx.log(
            f"  {shape}: airflow {af_wall:.2f}s wall, {af_inproc:.2f}s in-process; "
            f"minisched {ms_wall:.2f}s, {ms_inproc:.3f}s"
        )
        figures += [
            Figure(f"airflow.dags_test.{shape}.wall_s", af_wall, "s", params=params),
            Figure(f"airflow.dags_test.{shape}.inproc_ms_per_task", af_inproc / N * 1e3, "ms", params=params),
            Figure(f"vs_airflow.dags_test.{shape}.minisched_wall_s", ms_wall, "s", params=params),
            Figure(f"vs_airflow.dags_test.{shape}.wall_speedup", af_wall / ms_wall, "x", params=params),
            Figure(
                f"vs_airflow.dags_test.{shape}.inproc_speedup",
                af_inproc / ms_inproc,
                "x",
                params=params,
                note="Airflow ms/task over minisched ms/task, in-process",
            ),
        ]
    return figures


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def _airflow_in_process(venv: Path, env: dict[str, str], dags: Path, dag_id: str) -> float:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IN_PROCESS, str(dags), dag_id],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"airflow dag.test() of {dag_id} failed:\n{done.stderr[-2000:]}")
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds
