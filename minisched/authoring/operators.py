"""The built-in operators: run a Python callable, run a bash command, do nothing."""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from minisched.authoring.baseoperator import BaseOperator
from minisched.authoring.context import context_env
from minisched.authoring.xcom import resolve_args, upstream_of
from minisched.exceptions import DagDefinitionError, SkipTask, TaskFailure

if TYPE_CHECKING:
    import subprocess


class EmptyOperator(BaseOperator):
    """A task that does nothing; useful to join or fan out branches."""

    def execute(self, context: dict[str, Any]) -> None:
        return None


class PythonOperator(BaseOperator):
    """Call ``python_callable(*op_args, **op_kwargs, **<context it asks for>)``.

    Context names are passed when the callable's signature names them, all of them when
    it takes ``**kwargs`` (Airflow's rule). An argument that is another task's value
    (``other.output``, or a ``@task`` result, also inside a list or dict) makes that task
    upstream and is pulled from XCom when the try runs. Unlike Airflow, ``op_kwargs`` are always passed,
    so a misspelt one fails with Python's TypeError instead of being silently dropped, and
    a context name that an ``op_args`` value already fills is not passed again.
    ``op_args``, ``op_kwargs`` and ``templates_dict`` are Jinja-templated; the rendered
    ``templates_dict`` reaches the callable as the context name ``templates_dict``.
    """

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        task_id: str,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise DagDefinitionError(
                f"task {task_id!r}: python_callable must be callable, got {python_callable!r}"
            )
        if op_args is not None and (isinstance(op_args, (str, bytes)) or not isinstance(op_args, Sequence)):
            raise DagDefinitionError(f"task {task_id!r}: op_args must be a list, got {op_args!r}")
        if op_kwargs is not None and not isinstance(op_kwargs, Mapping):
            raise DagDefinitionError(f"task {task_id!r}: op_kwargs must be a dict, got {op_kwargs!r}")
        if templates_dict is not None and not isinstance(templates_dict, Mapping):
            raise DagDefinitionError(
                f"task {task_id!r}: templates_dict must be a dict, got {templates_dict!r}"
            )
        super().__init__(task_id, **kwargs)
        self.templates_dict: dict[str, Any] | None = (
            dict(templates_dict) if templates_dict is not None else None
        )
        self.python_callable = python_callable
        self.op_args: list[Any] = list(op_args or [])
        self.op_kwargs: dict[str, Any] = dict(op_kwargs or {})
        self._plan: tuple[bool, frozenset[str]] | None = None
        upstream = upstream_of([self.op_args, self.op_kwargs])
        self._takes_xcom = bool(upstream)
        for task in upstream:
            task >> self

    def execute(self, context: dict[str, Any]) -> Any:
        context["templates_dict"] = self.templates_dict
        args, kwargs = self.op_args, self.callable_kwargs(context)
        if self._takes_xcom:
            args = resolve_args(args, context["ti"])
            kwargs.update(resolve_args(self.op_kwargs, context["ti"]))
        return self.python_callable(*args, **kwargs)

    def callable_kwargs(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments the callable gets for this context."""
        takes_all, names = self._signature_plan()
        if takes_all:
            chosen = {k: v for k, v in context.items() if k not in names}
        else:
            chosen = {k: context[k] for k in names if k in context}
        chosen.update(self.op_kwargs)
        return chosen

    def _signature_plan(self) -> tuple[bool, frozenset[str]]:
        """(takes **kwargs, names): names to pass, or with **kwargs the names not to pass."""
        if self._plan is None:
            self._plan = _cached_signature_plan(self.python_callable, len(self.op_args))
        return self._plan


_Plan = tuple[bool, frozenset[str]]
#: Plans per callable, kept while the callable lives: each try runs a fresh copy of its operator (its
#: templates rendered, or a mapped instance unmapped), so a plan kept on the operator was made anew
#: per try, and `inspect.signature` was a tenth of a no-op try's CPU.
_plans: weakref.WeakKeyDictionary[Callable[..., Any], dict[int, _Plan]] = weakref.WeakKeyDictionary()


def _cached_signature_plan(func: Callable[..., Any], n_positional: int) -> _Plan:
    try:
        by_count = _plans.setdefault(func, {})
    except TypeError:  # neither weakly referable nor hashable: work it out each time
        return _signature_plan(func, n_positional)
    plan = by_count.get(n_positional)
    if plan is None:
        plan = by_count[n_positional] = _signature_plan(func, n_positional)
    return plan


def _signature_plan(func: Callable[..., Any], n_positional: int) -> _Plan:
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature get no context
        return False, frozenset()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    filled = {p.name for p in positional[:n_positional]} | {
        p.name for p in params if p.kind == p.POSITIONAL_ONLY
    }
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return True, frozenset(filled)
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return False, frozenset(named - filled)


class BashOperator(BaseOperator):
    """Run ``bash -c bash_command``, streaming its output to ``sys.stdout`` line by line.

    The process gets the MINISCHED_* and AIRFLOW_CTX_* context variables, runs in its own
    session and is killed with its whole process group if the task is interrupted (timeout,
    SIGTERM). Exit code ``skip_on_exit_code`` (99) skips the task; any other non-zero code
    fails it. ``bash_command``, ``env`` and ``cwd`` are Jinja-templated; a command ending in
    ``.sh`` or ``.bash`` names a script template next to the DAG file. As in Airflow, ``env``
    replaces the inherited environment unless ``append_env=True``.
    """

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")
    kill_grace_seconds: float = 5.0

    def __init__(
        self,
        task_id: str,
        bash_command: str,
        *,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        skip_on_exit_code: int | Sequence[int] | None = 99,
        **kwargs: Any,
    ) -> None:
        if not isinstance(bash_command, str) or not bash_command.strip():
            raise DagDefinitionError(
                f"task {task_id!r}: bash_command must be a non-empty string, got {bash_command!r}"
            )
        if env is not None and not isinstance(env, Mapping):
            raise DagDefinitionError(f"task {task_id!r}: env must be a dict, got {env!r}")
        super().__init__(task_id, **kwargs)
        self.bash_command = bash_command
        self.env = dict(env) if env is not None else None
        self.append_env = append_env
        self.cwd = cwd
        self.skip_on_exit_codes: frozenset[int] = _exit_codes(skip_on_exit_code)
        self._process: subprocess.Popen[bytes] | None = None

    def execute(self, context: dict[str, Any]) -> str | None:
        """Run the command; returns its last output line, as Airflow does."""
        import subprocess

        process = subprocess.Popen(
            ["bash", "-c", self.bash_command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=self._environment(context),
            start_new_session=True,
        )
        self._process = process
        try:
            last_line = _stream_lines(process.stdout, sys.stdout)
            code = process.wait()
        except BaseException:
            _kill_group(process, self.kill_grace_seconds)
            raise
        finally:
            self._process = None
        if code in self.skip_on_exit_codes:
            raise SkipTask(f"Bash command returned exit code {code}; skipping")
        if code != 0:
            raise TaskFailure(f"Bash command failed with exit code {code}")
        return last_line

    def on_kill(self) -> None:
        """Kill the running command's process group, e.g. from a worker's SIGTERM handler."""
        process = self._process
        if process is not None:
            _kill_group(process, self.kill_grace_seconds)

    def _environment(self, context: Mapping[str, Any]) -> dict[str, str]:
        from minisched.settings import task_environ  # at run time only: authoring stays import-light

        inherited = task_environ(os.environ)
        if self.env is None:
            env = inherited
        else:
            given = {str(k): str(v) for k, v in self.env.items()}
            env = {**inherited, **given} if self.append_env else given
        env.update(context_env(context))
        return env


def _stream_lines(source: IO[bytes] | None, sink: IO[str]) -> str | None:
    last: str | None = None
    if source is None:
        return last
    with source:
        for raw in iter(source.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            sink.write(line if line.endswith("\n") else line + "\n")
            sink.flush()
            last = line.rstrip("\n")
    return last


def _kill_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within ``grace``."""
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            process.wait(timeout=grace)
            if sig == signal.SIGTERM:
                _signal_group(process.pid, signal.SIGKILL)  # reap stragglers in the group
            break
        except subprocess.TimeoutExpired:
            continue


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _exit_codes(value: int | Sequence[int] | None) -> frozenset[int]:
    if value is None:
        return frozenset()
    if isinstance(value, int):
        return frozenset({value})
    return frozenset(value)
