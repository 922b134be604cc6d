"""CPU seconds of processes, process trees and the whole machine, from Linux /proc.

The benchmarks run on a 2-core machine shared by the scheduler, its workers, the web server, the
load clients and whatever else runs there; to say where the cores went in a timed window, take a
`snapshot` of each part before and after and divide the difference by the window's wall time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

TICK = os.sysconf("SC_CLK_TCK")
MACHINE = "machine"
T = TypeVar("T")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state is [0]); empty once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def own_seconds(pid: int) -> float:
    """User + system CPU of the process itself (all its threads)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (any of its threads' children)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    except (OSError, ValueError):
        pass
    return found


def runs_module(pid: int, module: str) -> bool:
    """Whether process `pid` runs `python -m <module>` (false once it is gone)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return module.encode() in argv


def tree_seconds(pid: int) -> float:
    """CPU of the process, of its children it has reaped, and of its live descendants: the whole
    tree's, continuous as children exit and are reaped."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    own = sum(int(fields[k]) for k in (11, 12, 13, 14)) / TICK
    return own + sum(tree_seconds(child) for child in children(pid))


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and I/O wait since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass(frozen=True)
class CoreSplit:
    """Cores each part used over one window (CPU seconds / wall seconds); `machine` is every process."""

    seconds: float
    cores: Mapping[str, float]

    @property
    def ours(self) -> float:
        return sum(value for name, value in self.cores.items() if name != MACHINE)

    @property
    def others(self) -> float:
        """What the rest of the machine (other users' processes) took meanwhile; ticks make it +-0.05."""
        return max(0.0, self.cores.get(MACHINE, 0.0) - self.ours)

    def describe(self) -> str:
        parts = ", ".join(f"{name} {value:.2f}" for name, value in self.cores.items() if name != MACHINE)
        return f"{parts}; other processes {self.others:.2f} (machine {self.cores.get(MACHINE, 0.0):.2f})"


def measure(parts: Callable[[], dict[str, float]], work: Callable[[], T]) -> tuple[T, CoreSplit]:
    """`work()`'s result and the cores each of `parts()` (CPU seconds so far, by name) used meanwhile."""
    before, began = parts(), time.perf_counter()
    result = work()
    after, seconds = parts(), time.perf_counter() - began
    cores = {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}
    return result, CoreSplit(seconds, cores)


def median_split(splits: list[CoreSplit]) -> CoreSplit:
    """Each part's median over several windows."""
    import statistics

    names = list(splits[0].cores)
    return CoreSplit(
        statistics.median(s.seconds for s in splits),
        {name: statistics.median(s.cores.get(name, 0.0) for s in splits) for name in names},
    )
