"""Import one DAG file in isolation and collect the DAGs it defines (or the reason it could not)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minisched.authoring.dag import DAG

DEFAULT_IMPORT_TIMEOUT = 30.0


@dataclass
class ImportResult:
    fileloc: str
    dags: dict[str, DAG] = field(default_factory=dict)
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)  # what `error` describes


class DagFileImportTimeout(Exception):
    pass


def module_name_for(path: str) -> str:
    """A unique, stable module name per file, so two files named `etl.py` never collide."""
    return "minisched_dagfile_" + hashlib.sha1(path.encode()).hexdigest()[:16]


_dag_folders: set[str] = set()  # every folder this process put on sys.path


def ensure_on_sys_path(folder: str) -> None:
    """Let DAG files import helper modules that sit next to them, as Airflow does for its DAG folder.

    Appended, not prepended, so a helper never shadows the standard library or an installed package.
    A folder added before is taken off, so loading another folder never picks up the old one's helpers.
    """
    for old in _dag_folders - {folder}:
        with contextlib.suppress(ValueError):
            sys.path.remove(old)
    _dag_folders.add(folder)
    if folder not in sys.path:
        sys.path.append(folder)


def forget_helper_modules() -> None:
    """Drop cached modules imported from DAG folders, so the next import reads changed helpers again."""
    prefixes = tuple(folder.rstrip(os.sep) + os.sep for folder in _dag_folders)
    if not prefixes:
        return
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if filename and filename.startswith(prefixes) and not name.startswith("minisched"):
            sys.modules.pop(name, None)


def import_dag_file(path: str, *, timeout: float | None = DEFAULT_IMPORT_TIMEOUT) -> ImportResult:
    """Execute the file as a fresh module; any failure becomes `error` (naming the file and line)."""
    from minisched.authoring.dag import collect_dags

    name = module_name_for(path)
    sys.modules.pop(name, None)
    result = ImportResult(fileloc=path)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        with _time_limit(timeout, path), collect_dags() as created:
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        result.error = describe_import_error(path, exc)
        result.exception = exc
        return result
    for dag in created:
        if dag.dag_id in result.dags:
            result.dags = {}
            result.error = f"{path}: duplicate dag_id {dag.dag_id!r} defined twice in this file; rename one"
            return result
        dag.fileloc = path
        result.dags[dag.dag_id] = dag
    return result


def describe_import_error(path: str, exc: BaseException) -> str:
    """One headline naming the file, line and cause, followed by the traceback frames inside the file."""
    if isinstance(exc, SyntaxError) and exc.filename == path:
        where = f"{path}:{exc.lineno}"
        return f"{where}: {type(exc).__name__}: {exc.msg}\n{(exc.text or '').rstrip()}"
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == path]
    where = f"{path}:{frames[-1].lineno}" if frames else path
    headline = f"{where}: {type(exc).__name__}: {exc}"
    detail = "".join(traceback.format_list(frames)).rstrip()
    return f"{headline}\n{detail}" if detail else headline


@contextlib.contextmanager
def _time_limit(seconds: float | None, path: str) -> Iterator[None]:
    """Stop a DAG file whose top-level code runs too long (only possible in the main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        raise DagFileImportTimeout(
            f"importing took longer than {seconds:g}s; move slow work out of top level"
        )

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
