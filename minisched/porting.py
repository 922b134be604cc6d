"""`dags port`: rewrite an Airflow 2 DAG file's imports to minisched's, and name what is left.

Only import statements are rewritten, each in place and on as many lines as before, so every
line number of the output is the line number of the input. A name minisched exports under
another name keeps the file's own name (``from minisched import SkipTask as
AirflowSkipException``), so the rest of the file needs no change. Whatever minisched lacks is
left untouched and reported with its line: imports it has no equivalent for, attributes its
objects lack (``TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS``, ``task.virtualenv``) and keyword
arguments its operators and ``DAG`` do not take.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from minisched.exceptions import MinischedError

_MODELS = {"DAG": "DAG", "BaseOperator": "BaseOperator", "Param": "Param"}
_PYTHON = {
    "PythonOperator": "PythonOperator",
    "BranchPythonOperator": "BranchPythonOperator",
    "ShortCircuitOperator": "ShortCircuitOperator",
    "get_current_context": "get_current_context",
}
_CHAIN = {"chain": "chain", "cross_downstream": "cross_downstream"}
# Airflow module -> {name there: minisched's name}. A name minisched does not export (yet) is
# reported instead of ported, so this table may list names other parts of minisched add later.
AIRFLOW_TO_MINISCHED: Mapping[str, Mapping[str, str]] = {
    "airflow": {"DAG": "DAG"},
    "airflow.models": {**_MODELS, "Variable": "Variable", "Connection": "Connection"},
    "airflow.models.dag": {"DAG": "DAG", "dag": "dag"},
    "airflow.models.baseoperator": {"BaseOperator": "BaseOperator", **_CHAIN},
    "airflow.models.param": {"Param": "Param"},
    "airflow.models.variable": {"Variable": "Variable"},
    "airflow.models.connection": {"Connection": "Connection"},
    "airflow.hooks.base": {"BaseHook": "BaseHook"},
    "airflow.decorators": {"dag": "dag", "task": "task", "task_group": "task_group"},
    "airflow.operators.python": _PYTHON,
    "airflow.operators.python_operator": _PYTHON,
    "airflow.operators.bash": {"BashOperator": "BashOperator"},
    "airflow.operators.bash_operator": {"BashOperator": "BashOperator"},
    "airflow.operators.empty": {"EmptyOperator": "EmptyOperator"},
    "airflow.operators.dummy": {"DummyOperator": "EmptyOperator", "EmptyOperator": "EmptyOperator"},
    "airflow.operators.dummy_operator": {"DummyOperator": "EmptyOperator"},
    "airflow.utils.task_group": {"TaskGroup": "TaskGroup"},
    "airflow.utils.trigger_rule": {"TriggerRule": "TriggerRule"},
    "airflow.utils.helpers": _CHAIN,
    "airflow.exceptions": {"AirflowSkipException": "SkipTask", "AirflowFailException": "FailTask"},
    # The standard provider's homes of the same operators (Airflow 2.10+ and 3).
    "airflow.providers.standard.operators.python": _PYTHON,
    "airflow.providers.standard.operators.bash": {"BashOperator": "BashOperator"},
    "airflow.providers.standard.operators.empty": {"EmptyOperator": "EmptyOperator"},
    # Airflow 3's authoring package, for DAG files written for both.
    "airflow.sdk": {
        **_MODELS,
        **_CHAIN,
        "dag": "dag",
        "task": "task",
        "task_group": "task_group",
        "TaskGroup": "TaskGroup",
        "get_current_context": "get_current_context",
        "Variable": "Variable",
        "Connection": "Connection",
        "BaseHook": "BaseHook",
    },
}
# Methods Airflow users call on tasks and operators, and the minisched object that would have them.
_METHODS = {"expand": "task", "expand_kwargs": "task", "partial": "BaseOperator"}


class PortError(MinischedError):
    """The file cannot be ported at all (it is not valid Python)."""


@dataclass(frozen=True)
class Leftover:
    """Something in the file minisched lacks, at ``line`` (same in input and output)."""

    line: int
    what: str
    why: str


@dataclass
class PortResult:
    source: str
    ported: list[str] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)


def port_source(source: str, filename: str = "<file>") -> PortResult:
    """Rewrite ``source``'s Airflow imports; see the module docstring."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise PortError(f"{filename}:{exc.lineno}: not valid Python ({exc.msg}); fix it first") from None
    exported = _minisched_exports()
    result = PortResult(source)
    bound: dict[str, str] = {}  # local name -> minisched name
    edits: list[tuple[ast.stmt, str]] = []
    for node in _imports(tree):
        replacement = _port_import(node, exported, bound, result)
        if replacement is not None:
            edits.append((node, replacement))
    result.source = _apply(source, edits)
    result.leftovers.extend(_usage_leftovers(tree, bound))
    result.leftovers.sort(key=lambda item: item.line)
    return result


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        from_airflow = isinstance(node, ast.ImportFrom) and node.level == 0 and _is_airflow(node.module or "")
        if from_airflow or (isinstance(node, ast.Import) and any(_is_airflow(a.name) for a in node.names)):
            yield node  # type: ignore[misc]


def _is_airflow(module: str) -> bool:
    return module == "airflow" or module.startswith("airflow.")


def _port_import(
    node: ast.Import | ast.ImportFrom, exported: set[str], bound: dict[str, str], result: PortResult
) -> str | None:
    """The text replacing ``node``, or None to leave it as it is; records what was ported."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if _is_airflow(alias.name):
                result.leftovers.append(
                    Leftover(node.lineno, f"import {alias.name}", "import the names you use from minisched")
                )
        return None
    module = node.module or ""
    table = AIRFLOW_TO_MINISCHED.get(module, {})
    ported: list[str] = []
    kept: list[str] = []
    for alias in node.names:
        target = table.get(alias.name)
        if target is not None and target in exported:
            local = alias.asname or alias.name
            ported.append(target if local == target else f"{target} as {local}")
            bound[local] = target
            result.ported.append(f"{module}.{alias.name}")
        else:
            kept.append(alias.name if alias.asname is None else f"{alias.name} as {alias.asname}")
            result.leftovers.append(
                Leftover(node.lineno, f"{module}.{alias.name}", _why_missing(module, alias.name))
            )
    if not ported:
        return None
    parts = [f"from minisched import {', '.join(ported)}"]
    if kept:
        parts.append(f"from {module} import {', '.join(kept)}")
    return "; ".join(parts)


def _why_missing(module: str, name: str) -> str:
    if name == "*":
        return "import the names you use one by one"
    if module not in AIRFLOW_TO_MINISCHED:
        return "minisched has no equivalent of this module"
    return "minisched has no equivalent (yet)"


def _usage_leftovers(tree: ast.AST, bound: Mapping[str, str]) -> Iterator[Leftover]:
    import minisched

    objects = {local: getattr(minisched, name) for local, name in bound.items()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield from _attribute_leftover(node, objects, bound)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in objects:
            yield from _keyword_leftovers(node, node.func.id, objects[node.func.id])


def _attribute_leftover(
    node: ast.Attribute, objects: Mapping[str, Any], bound: Mapping[str, str]
) -> Iterator[Leftover]:
    if isinstance(node.value, ast.Name) and node.value.id in objects:
        if not hasattr(objects[node.value.id], node.attr):
            name = bound[node.value.id]
            yield Leftover(
                node.lineno, f"{node.value.id}.{node.attr}", f"minisched's {name} has no {node.attr!r}"
            )
    elif node.attr in _METHODS and not _has_method(_METHODS[node.attr], node.attr):
        yield Leftover(node.lineno, f".{node.attr}()", "minisched has no dynamic task mapping (yet)")


def _has_method(owner: str, method: str) -> bool:
    import minisched

    if owner == "task":
        from minisched.authoring.decorators import TaskFunction

        return hasattr(TaskFunction, method)
    return hasattr(getattr(minisched, owner), method)


def _keyword_leftovers(node: ast.Call, local: str, target: Any) -> Iterator[Leftover]:
    accepted = _accepted_keywords(target)
    if accepted is None:
        return
    for keyword in node.keywords:
        if keyword.arg is not None and keyword.arg not in accepted:
            yield Leftover(
                keyword.value.lineno, f"{local}({keyword.arg}=...)", "minisched does not take this argument"
            )


def _accepted_keywords(target: Any) -> set[str] | None:
    """The keyword arguments an operator, DAG or TaskGroup takes, up its MRO (for ``@task(...)`` and
    ``@dag(...)``, those of the operator or DAG they make); None for anything else."""
    from minisched.authoring import DAG, BaseOperator, TaskGroup, dag
    from minisched.authoring.decorators import TaskDecorator

    if isinstance(target, TaskDecorator):
        target = target.operator_class
    elif target is dag:
        return {"dag_id"} | (_accepted_keywords(DAG) or set())
    if not inspect.isclass(target) or not issubclass(target, (BaseOperator, DAG, TaskGroup)):
        return None
    names: set[str] = set()
    for klass in target.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names or None


def _minisched_exports() -> set[str]:
    import minisched

    return set(minisched.__all__)


def _apply(source: str, edits: Iterable[tuple[ast.stmt, str]]) -> str:
    """Replace each statement by its text; pad with newlines so every later line keeps its number."""
    lines = source.encode().splitlines(keepends=True)
    for node, text in sorted(edits, key=lambda edit: (edit[0].lineno, edit[0].col_offset), reverse=True):
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        head = lines[first][: node.col_offset]
        tail = lines[last][node.end_col_offset :]
        if first < last and not tail.endswith(b"\n"):
            tail += b"\n"
        padding = b"\n" * (last - first)
        lines[first : last + 1] = [head + text.encode() + tail + padding]
    return b"".join(lines).decode()
