"""Whatever a try started dies with the try, detached grandchildren included.

A worker marks itself a child subreaper (Linux's PR_SET_CHILD_SUBREAPER): a process the try started
that outlives its own parent -- a daemon that double-forked, a `setsid sleep 1000 &` -- is then
re-parented to the worker instead of to init. Once the try's process has exited, every child the
worker still has belongs to that try, and `kill_leftovers` kills and reaps them, level by level.
Elsewhere (no subreaper), only the try's process group can be killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants; False where the OS cannot."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(signum: int) -> None:
    """Receive `signum` when the parent (strictly: the thread that forked us) dies; Linux only."""
    _prctl(_PR_SET_PDEATHSIG, int(signum))


def kill_leftovers(max_rounds: int = 1000) -> int:
    """SIGKILL and reap every child of this process, then the children they leave behind; returns
    how many were killed. Call it only when no child of this process should be alive."""
    killed = 0
    for _ in range(max_rounds):
        if not _has_children():
            break
        children = children_of(os.getpid())
        if not children:
            break
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        killed += len(children)
    return killed


def _has_children() -> bool:
    """Whether this process has a child, live or not, in one system call: after most tries it has
    none, and reading /proc for each costs more than the rest of a no-op try's cleanup."""
    if not hasattr(os, "waitid"):
        return True
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def children_of(pid: int) -> list[int]:
    """The live children of `pid`: /proc's per-thread children lists, else a scan of /proc."""
    task_dir = f"/proc/{pid}/task"
    try:
        threads = os.listdir(task_dir)
    except OSError:
        return []
    found: set[int] = set()
    try:
        for tid in threads:
            with open(f"{task_dir}/{tid}/children", "rb") as children:
                found.update(int(child) for child in children.read().split())
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN (or a thread that just ended)
        found = {child for child, parent in _parents() if parent == pid}
    return sorted(found)


def _parents() -> list[tuple[int, int]]:
    pairs = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
            pairs.append((int(entry.name), int(stat[stat.rindex(")") + 2 :].split()[1])))
    return pairs
