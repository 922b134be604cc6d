"""Before/after of a change, in one run: the same commands against two versions of minisched, in turn.

    .venv/bin/python -m benchmarks.ab main HEAD                 # `dags test` of 10/100 tasks, `--help`
    .venv/bin/python -m benchmarks.ab main WORKTREE --dag chain:100 --repeats 9
    .venv/bin/python -m benchmarks.ab main WORKTREE --chain-hop 60 --repeats 7   # the scheduler's hop

Each REV (a git revision, or WORKTREE for the files as they are now) is exported with `git archive`
into a temporary folder, byte-compiled, and put first on PYTHONPATH, ahead of the installed
minisched; each gets its own home (initdb by that version). Commands run alternately, REV after REV,
so that a change of the machine's load hits all of them; each `dags test` runs once untimed first
(the DAG parsed). Prints the median wall and CPU (user + system) seconds of each, and each REV's
speedup over the first; on a loaded machine the CPU seconds are the steadier of the two.

`--chain-hop TASKS` measures the scheduler instead: each REV's `minisched scheduler` (local executor,
parallelism 2) runs, all of them idle while another's turn runs; in turn, each runs a chain of TASKS
no-op tasks, a 2-process pool's no-op round trip sampled right before and after (`PoolSampler`).
Prints per REV the median hop (upstream end -> downstream start), the same in pool round trips (over
the round trips sampled around that REV's runs) and the scheduler process's CPU per task.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, Shape, dag_source

WORKTREE = "WORKTREE"


def export(rev: str, into: Path) -> Path:
    """The minisched package (and its alembic history) of `rev`, byte-compiled, in `into`."""
    into.mkdir(parents=True)
    if rev == WORKTREE:
        for name in ("minisched", "migrations"):
            if (REPO / name).exists():
                shutil.copytree(REPO / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(
            ["git", "archive", rev, "minisched", "migrations"], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    # Installed, the alembic history is the package minisched_migrations (see pyproject.toml): under
    # that name this version's own history comes first on PYTHONPATH, not the editable install's.
    if (into / "migrations").exists():
        (into / "migrations").rename(into / "minisched_migrations")
    compileall.compile_dir(str(into), quiet=1)
    return into


class Version:
    def __init__(self, rev: str, root: Path) -> None:
        self.rev = rev
        self.code = export(rev, root / "code")
        self.home = root / "home"
        (self.home / "dags").mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINISCHED_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            PYTHONPATH=str(self.code),
            MINISCHED_HOME=str(self.home),
            MINISCHED_DB_URL=f"sqlite:///{self.home / 'minisched.db'}",
            MINISCHED_DAGS_FOLDER=str(self.home / "dags"),
            MINISCHED_LOGS_FOLDER=str(self.home / "logs"),
        )
        self.env = env
        self.cpu: list[float] = []
        self.run("initdb")

    def run(self, *args: str) -> float:
        """Wall seconds of one command; its CPU seconds (user + system) go to `cpu`."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "minisched", *args],
            # `-m` puts the current folder first on sys.path: from a checkout, its minisched would run.
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"{self.rev}: minisched {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="+", help=f"git revisions, or {WORKTREE}")
    parser.add_argument(
        "--dag",
        action="append",
        help="SHAPE:TASKS to `dags test` (repeatable; default parallel:10, parallel:100, chain:100)",
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chain-hop", type=int, metavar="TASKS", help="time the scheduler's chain hop")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.chain_hop:
        with tempfile.TemporaryDirectory(prefix="minisched-ab-") as tmp:
            versions = [Version(rev, Path(tmp) / f"v{i}") for i, rev in enumerate(args.revs)]
            chain_hops(versions, args.chain_hop, args.repeats)
        return 0
    dags = args.dag or ["parallel:10", "parallel:100", "chain:100"]
    with tempfile.TemporaryDirectory(prefix="minisched-ab-") as tmp:
        versions = [Version(rev, Path(tmp) / f"v{i}") for i, rev in enumerate(args.revs)]
        commands: list[tuple[str, ...]] = [("--help",)]
        for spec in dags:
            shape, tasks = spec.split(":")
            dag_id = f"{shape}_{tasks}"
            source = dag_source(dag_id, int(tasks), _shape(shape))
            for version in versions:
                (version.home / "dags" / f"{dag_id}.py").write_text(source)
                version.run("dags", "test", dag_id)  # the DAG parsed, as in `bench_airflow`
            commands.append(("dags", "test", dag_id))
        load = os.getloadavg()[0]
        print(f"load average {load:.2f}; median of {args.repeats}, in turn", file=sys.stderr)
        for command in commands:
            samples: list[list[float]] = [[] for _ in versions]
            for version in versions:
                version.cpu.clear()
            for _ in range(args.repeats):
                for i, version in enumerate(versions):
                    samples[i].append(version.run(*command))
            walls = [statistics.median(s) for s in samples]
            cpus = [statistics.median(v.cpu) for v in versions]
            cells = [
                f"{v.rev} {w:.3f}s wall ({walls[0] / w:.2f}x), {c:.3f}s CPU ({cpus[0] / c:.2f}x)"
                for v, w, c in zip(versions, walls, cpus, strict=True)
            ]
            print(f"{' '.join(command):<24} " + "  ".join(cells), flush=True)
    return 0


def chain_hops(versions: Sequence[Version], tasks: int, repeats: int) -> None:
    from datetime import UTC, datetime, timedelta

    from benchmarks.baselines import PoolSampler
    from benchmarks.common import (
        Home,
        SchedulerProcess,
        chain_edges,
        edge_latencies,
        in_process,
        read_engine,
        trigger,
        wait_for_run,
    )

    homes = [Home(v.home, v.env["MINISCHED_DB_URL"]) for v in versions]
    for home in homes:
        (home.dags / "hop_chain.py").write_text(dag_source("hop_chain", tasks, "chain"))
    engines = [read_engine(home.db_url) for home in homes]
    hops: list[list[float]] = [[] for _ in versions]
    trips: list[list[float]] = [[] for _ in versions]
    cpu: list[list[float]] = [[] for _ in versions]
    edges = chain_edges(1, tasks)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(PoolSampler(200, batches=4))
        schedulers = []
        for home, version in zip(homes, versions, strict=True):
            scheduler = SchedulerProcess(home)
            scheduler.env["PYTHONPATH"] = version.env["PYTHONPATH"]  # this version's code, not ours
            schedulers.append(stack.enter_context(scheduler))
        for scheduler, engine in zip(schedulers, engines, strict=True):
            scheduler.wait_for_dags(engine, {"hop_chain"})
        print(
            f"load average {os.getloadavg()[0]:.2f}; {repeats} chains of {tasks} each, in turn",
            file=sys.stderr,
        )
        for r in range(repeats + 1):  # the first round warms up (DAG imported by the workers), not counted
            for i, (home, engine, scheduler) in enumerate(zip(homes, engines, schedulers, strict=True)):
                before = pool.sample()
                cpu_before = _cpu_seconds(scheduler.pid)
                with in_process(home):
                    run_id = trigger(
                        "hop_chain", logical_date=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(r)
                    )
                times = wait_for_run(engine, "hop_chain", run_id, timeout=600, alive=scheduler.check_alive)
                used = _cpu_seconds(scheduler.pid) - cpu_before
                after = pool.sample()
                if r == 0:
                    continue
                hops[i] += edge_latencies(times.tasks, edges)
                trips[i] += before + after
                cpu[i].append(used / tasks)
    for engine in engines:
        engine.dispose()
    first = statistics.median(hops[0])
    for i, version in enumerate(versions):
        hop, trip = statistics.median(hops[i]), statistics.median(trips[i])
        per_task = statistics.median(cpu[i])
        print(
            f"{version.rev}: hop {hop * 1e3:.2f} ms ({first / hop:.2f}x), {hop / trip:.1f} round trips of "
            f"{trip * 1e6:.0f} us; scheduler CPU {per_task * 1e3:.2f} ms/task",
            flush=True,
        )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _shape(value: str) -> Shape:
    if value not in ("parallel", "chain"):
        raise SystemExit(f"--dag: shape must be parallel or chain, not {value!r}")
    return "chain" if value == "chain" else "parallel"


if __name__ == "__main__":
    sys.exit(main())
