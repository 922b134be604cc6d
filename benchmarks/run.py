"""Run every benchmark, print the figures table, and (full runs) write benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks [--quick] [--backend sqlite|postgresql|both] [--only NAME,...]
    .venv/bin/python benchmarks/run.py ...          (the same)

--quick uses small sizes (well under a minute) and never writes RESULTS.md; it is what the smoke test
runs. PostgreSQL comes from MINISCHED_BENCH_PG_URL (an admin URL) or else `.ci/start-postgres`.
Missing a target never changes the exit code; a benchmark that raises does (exit 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.common import Figure

if __package__ in (None, ""):  # `python benchmarks/run.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    title: str
    per_backend: bool = True


BENCHMARKS = (
    Benchmark("throughput", "benchmarks.bench_throughput", "1. End-to-end throughput"),
    Benchmark("sql_per_loop", "benchmarks.bench_sql_per_loop", "2. SQL statements per scheduler loop"),
    Benchmark("commits", "benchmarks.bench_commits", "3. Commits per task"),
    Benchmark("startup", "benchmarks.bench_startup", "4. Start-up"),
    Benchmark("parsing", "benchmarks.bench_parsing", "5. Parsing a DAG folder"),
    Benchmark("memory", "benchmarks.bench_memory", "6. Scheduler memory"),
    Benchmark("latency", "benchmarks.bench_latency", "7. Scheduling latency"),
    Benchmark("webserver", "benchmarks.bench_webserver", "8. Web server"),
    Benchmark("celery", "benchmarks.bench_celery", "9. Celery executor vs local"),
    Benchmark("api_load", "benchmarks.bench_api_load", "10. Scheduler under API load"),
)
AIRFLOW = Benchmark("airflow", "benchmarks.bench_airflow", "Airflow 2.10.5 side by side", per_backend=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 minute); no RESULTS.md")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated benchmark names: " + ", ".join(b.name for b in (*BENCHMARKS, AIRFLOW)),
    )
    parser.add_argument("--with-airflow", action="store_true", help="also time Airflow 2.10.5 (~300 MB venv)")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (printed)")
    parser.add_argument("--figures-json", type=Path, help=argparse.SUPPRESS)  # for the Airflow side process
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import importlib

    from benchmarks import ratios
    from benchmarks.baselines import Baselines
    from benchmarks.common import Backend, BenchContext, Figure, start_postgres

    args = parse_args(argv)
    backends: list[Backend] = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    only = set(args.only.split(",")) - {""}
    selected = [b for b in BENCHMARKS if not only or b.name in only]
    airflow_beside = None
    if args.with_airflow or AIRFLOW.name in only:
        if selected:
            # Airflow takes many minutes (its 1,000-task chain most of them), so it runs in a process of
            # its own beside the others; its speedups are taken in turn within it, under the same load.
            airflow_beside = _start_airflow_beside(args, backends[0])
        else:
            selected.append(AIRFLOW)
    pg_url = None
    if "postgresql" in backends:
        pg_url = os.environ.get("MINISCHED_BENCH_PG_URL") or start_postgres()
    workdir = Path(tempfile.mkdtemp(prefix="minisched-bench-"))
    load_before = _loadavg()
    figures: list[Figure] = []
    failures: list[str] = []
    started = time.perf_counter()
    _byte_compile()
    baselines = Baselines()
    baselines.sample(quick=args.quick)
    try:
        for index, backend in enumerate(backends):
            for bench in selected:
                if not bench.per_backend and index > 0:
                    continue
                ctx = BenchContext(
                    backend=backend,
                    quick=args.quick,
                    workdir=workdir,
                    pg_admin_url=pg_url,
                    first_backend=index == 0,
                )
                ctx.log(f"[{backend}] {bench.title} ...")
                t0 = time.perf_counter()
                try:
                    module: ModuleType = importlib.import_module(bench.module)
                    run: Callable[[BenchContext], list[Figure]] = module.run
                    produced = run(ctx)
                except Exception as exc:
                    traceback.print_exc()
                    failures.append(f"{bench.name} [{backend}]: {type(exc).__name__}: {exc}")
                    produced = [
                        Figure(f"{bench.name}.error", None, note=f"{type(exc).__name__}: {exc}"[:200])
                    ]
                for figure in produced:
                    figure.backend = figure.backend or (backend if bench.per_backend else "")
                figures += produced
                ctx.log(f"[{backend}] {bench.title}: {time.perf_counter() - t0:.1f}s")
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if airflow_beside is not None:
        figures += _finish_airflow_beside(*airflow_beside, failures)
    baselines.sample(quick=args.quick)  # again at the end: the load may have changed meanwhile
    figures = ratios.baseline_figures(baselines) + figures + ratios.target_figures(figures, baselines)
    ratios.annotate(figures, baselines)
    total = time.perf_counter() - started
    table = render_table(figures)
    print(table)
    failed_targets = [f for f in figures if f.ok is False]
    print(f"\n{len(figures)} figures in {total:.1f}s; {len(failed_targets)} targets not met", end="")
    print(": " + ", ".join(f"{f.name} [{f.backend}]" for f in failed_targets) if failed_targets else "")
    for failure in failures:
        print(f"ERROR {failure}", file=sys.stderr)
    if args.figures_json is not None:
        args.figures_json.write_text(json.dumps([dataclasses.asdict(f) for f in figures]))
    if not (args.quick or args.only or args.no_write):
        load = f"{load_before} before, {_loadavg()} after"
        write_results(figures, table=table, backends=backends, pg_url=pg_url, total=total, load=load)
        print(f"wrote {RESULTS}")
    return 1 if failures else 0


def _start_airflow_beside(args: argparse.Namespace, backend: str) -> tuple[subprocess.Popen[bytes], Path]:
    output = Path(tempfile.mkstemp(prefix="minisched-bench-airflow-", suffix=".json")[1])
    command = [sys.executable, "-m", "benchmarks", "--only", AIRFLOW.name, "--backend", backend]
    command += ["--no-write", "--figures-json", str(output), *(["--quick"] if args.quick else [])]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL), output


def _finish_airflow_beside(
    process: subprocess.Popen[bytes], output: Path, failures: list[str]
) -> list[Figure]:
    from benchmarks.common import Figure

    try:
        if process.wait() != 0:
            failures.append(f"{AIRFLOW.name}: its process exited {process.returncode} (see above)")
        text = output.read_text()
        figures = [Figure(**fields) for fields in json.loads(text)] if text else []
    finally:
        output.unlink(missing_ok=True)
    # This run's baselines, not the side process's, are the ones its figures are compared with.
    kept = [f for f in figures if not f.name.startswith(("baseline.", "vs_baseline."))]
    return [dataclasses.replace(f, ratio="") for f in kept]


def _byte_compile() -> None:
    """Compile minisched's modules as installing it would: with PYTHONDONTWRITEBYTECODE set (or a
    fresh checkout), every command would otherwise compile them again, which Airflow's venv never does."""
    import compileall

    import minisched

    compileall.compile_dir(str(Path(minisched.__file__).parent), quiet=1)


def render_table(figures: Sequence[object]) -> str:
    from benchmarks.common import Figure

    rows: list[tuple[str, ...]] = [
        ("backend", "figure", "value", "unit", "target", "ok?", "measured", "note", "vs in-run baseline")
    ]
    for figure in figures:
        assert isinstance(figure, Figure)
        rows.append(
            (
                figure.backend,
                figure.name,
                figure.formatted_value(),
                figure.unit,
                figure.target,
                figure.verdict(),
                figure.params,
                figure.note,
                figure.ratio,
            )
        )
    rows = [tuple(cell.replace("|", "/") for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_lines(backends: Sequence[str], pg_url: str | None) -> list[str]:
    import sqlalchemy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"- CPUs (nproc): {usable}; CPU model: {cpu}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.executable}); SQLAlchemy {sqlalchemy.__version__}",
        f"- SQLite {sqlite3.sqlite_version}",
    ]
    if "postgresql" in backends and pg_url:
        from benchmarks.common import pg_execute

        version = pg_execute(pg_url, "SHOW server_version")[0]
        lines.append(f"- PostgreSQL {version} (fsync=off, synchronous_commit=off: `.ci/start-postgres`)")
    return lines


def write_results(
    figures: Sequence[object],
    *,
    table: str,
    backends: Sequence[str],
    pg_url: str | None,
    total: float,
    load: str,
) -> None:
    from benchmarks.common import Figure

    command = (
        "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv[0].endswith("__main__.py")
        else "python " + " ".join(shlex.quote(a) for a in sys.argv)
    )
    failed = [f for f in figures if isinstance(f, Figure) and f.ok is False]
    compared = [f for f in figures if isinstance(f, Figure) and f.name.startswith(("vs_", "baseline."))]
    text = [
        "# minisched benchmark results",
        "",
        "Written by `benchmarks/run.py` (full run); do not edit by hand. Figures are one run on the machine",
        "below; `ok?` compares with the targets of issues 6 and 15 / `ANCHORS.md`. Methods: the",
        "docstrings of `benchmarks/bench_*.py`, `benchmarks/baselines.py` and `benchmarks/ratios.py`.",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; total {total:.0f}s",
        f"- Command: `{command.strip()}`",
        *machine_lines(backends, pg_url),
        f"- Load average (1/5/15 min): {load} (other work on the machine skews timings)",
        "",
        "## Ratios, measured side by side in this run",
        "",
        "Only these mean something across machines and loads: each compares two things timed in the",
        "same run (`vs_airflow.*`: Airflow 2.10.5's seconds / minisched's; `vs_baseline.*`: minisched",
        "against the in-run baselines `baseline.*`).",
        "",
        render_table(compared),
        "",
        "## Figures",
        "",
        table,
        "",
        "## Reading the figures",
        "",
        "- `scheduler.*`: a real `minisched scheduler` process (local executor, parallelism 2) already",
        "  running; trigger -> the run's end_date. `dags_test.*.wall_*` include interpreter start-up;",
        "  `dags_test.*.inproc_*` are the scheduler loop's own per-task cost (the dags test target).",
        "- `latency.chains.edge_*` counts the wait for one of the 2 executor slots (~100 ready tasks compete",
        "  for them); `latency.chains.slot_adjusted_*` leaves that wait out; `latency.chain.*` (one chain,",
        "  a slot always free) is the scheduler's pure reaction time. Its target is in round trips of the",
        "  pool baseline sampled right before and after each of the chain's runs, under the same load",
        "  (`latency.chain.pool_round_trip`, `vs_baseline.latency.chain.hop_round_trips`); the other",
        "  `vs in-run baseline` cells use `baseline.*`, sampled at the run's start and end.",
        "- `sql_per_loop.*`: statements of one steady loop (loops that end a run are events of their own);",
        "  `spread` = 0 means the count does not grow with ready task instances or active runs.",
        "- Where the time goes: `python -m benchmarks.profile_loop --shape chain --tasks 300 --cprofile 30`.",
        "",
        "## Targets not met",
        "",
    ]
    if failed:
        text += [
            f"- `{f.name}` [{f.backend}]: {f.formatted_value()} {f.unit} (target {f.target})" for f in failed
        ]
    else:
        text.append("None.")
    RESULTS.write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    sys.exit(main())
