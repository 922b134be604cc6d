"""4. Start-up: `minisched --help` and `minisched version` (median of 7), `minisched initdb` (median of 5).

The CLI runs as the installed console script (`minisched` next to this interpreter, else
`python -m minisched`); `python -c pass` is the interpreter's own floor for comparison. `initdb` runs on
a fresh SQLite file (or a fresh PostgreSQL database) each time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.common import BenchContext, Figure, at_most, new_home

CLI_TARGET = 0.150  # s
INITDB_TARGET = 1.0  # s


def minisched_command() -> list[str]:
    script = Path(sys.executable).with_name("minisched")
    return [str(script)] if script.exists() else [sys.executable, "-m", "minisched"]


def time_command(command: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(list(command), env=dict(env or os.environ), capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-1000:]}")
    return elapsed


def run(ctx: BenchContext) -> list[Figure]:
    figures: list[Figure] = []
    if ctx.first_backend:
        repeats = ctx.size(7, 3)
        cli = minisched_command()
        time_command([*cli, "version"])  # warm the page cache and .pyc files
        for name, command, target in (
            ("startup.python_floor", [sys.executable, "-c", "pass"], None),
            ("startup.help", [*cli, "--help"], CLI_TARGET),
            ("startup.version", [*cli, "version"], CLI_TARGET),
        ):
            seconds = statistics.median(time_command(command) for _ in range(repeats))
            ctx.log(f"  {name}: {seconds * 1e3:.0f} ms")
            figures.append(
                Figure(
                    name,
                    seconds * 1e3,
                    "ms",
                    f"<= {target * 1e3:.0f}" if target else "",
                    at_most(seconds, target) if target else None,
                    f"median of {repeats}",
                    note=" ".join(Path(command[0]).name if i == 0 else c for i, c in enumerate(command)),
                )
            )
    repeats = ctx.size(5, 2)
    samples = []
    for i in range(repeats):
        with new_home(ctx, f"initdb_{i}", initdb=False) as home:
            env = home.environ()
            samples.append(time_command([*minisched_command(), "initdb"], env))
    seconds = statistics.median(samples)
    ctx.log(f"  initdb: {seconds:.3f} s (samples {', '.join(f'{s:.3f}' for s in samples)})")
    figures.append(
        Figure(
            "startup.initdb",
            seconds,
            "s",
            f"<= {INITDB_TARGET:g}",
            at_most(seconds, INITDB_TARGET),
            f"median of {repeats}, fresh {ctx.backend} database",
        )
    )
    return figures
