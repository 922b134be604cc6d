"""`minisched dags ...`: list, show, pause and unpause DAGs.

Every command loads the DAG folder first (only changed files are parsed, in other processes), so a file
dropped into the folder shows up in the very next command. Add a command with `@dags_group.command(...)`,
`@dags_folder_option`, and `refresh_dags()` as its first step (both from cli/dag_folder.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minisched.cli.audit import audit_cli
from minisched.cli.dag_folder import dags_folder_option, refresh_dags
from minisched.cli.output import output_option

if TYPE_CHECKING:
    from minisched.authoring.serialize import SerializedDag

DAG_LIST_COLUMNS = ("dag_id", "fileloc", "schedule", "is_paused", "next_dagrun")
IMPORT_ERROR_COLUMNS = ("filename", "error")
SHOW_FORMATS = ("text", "mermaid", "dot")


@click.group("dags")
def dags_group() -> None:
    """List, inspect, pause and unpause DAGs."""


@dags_group.command("list")
@dags_folder_option
@output_option
def dags_list(dags_folder: Path | None, output: str) -> None:
    """List the active DAGs (with --dags-folder: those of that folder)."""
    from sqlalchemy import func, select

    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.models import DagModel, ImportError_

    refresh_dags()
    with create_session() as session:
        columns = [getattr(DagModel, name) for name in DAG_LIST_COLUMNS]
        query = select(*columns).where(DagModel.is_active).order_by(DagModel.dag_id)
        if dags_folder is not None:
            query = query.where(_in_folder(DagModel.fileloc, dags_folder))
        rows = [dict(row._mapping) for row in session.execute(query)]
        broken = session.scalar(select(func.count()).select_from(ImportError_)) or 0
    print_rows(rows, DAG_LIST_COLUMNS, output)
    if broken:
        click.echo(
            f"Warning: {broken} DAG file(s) failed to import; run `minisched dags list-import-errors`",
            err=True,
        )


def _in_folder(column: Any, folder: Path) -> Any:
    """The SQL condition "this path is the folder (a single file) or lies inside it"."""
    from sqlalchemy import or_

    path = os.path.abspath(folder)
    prefix = path.rstrip(os.sep) + os.sep
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(column == path, column.like(escaped + "%", escape="\\"))


@dags_group.command("list-import-errors")
@dags_folder_option
@output_option
def dags_list_import_errors(dags_folder: Path | None, output: str) -> None:
    """List the DAG files that failed to import, and why."""
    from sqlalchemy import select

    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.models import ImportError_

    refresh_dags()
    with create_session() as session:
        query = select(ImportError_.filename, ImportError_.stacktrace.label("error")).order_by(
            ImportError_.filename
        )
        rows = [dict(row._mapping) for row in session.execute(query)]
    print_rows(rows if output == "json" else _one_line_per_row(rows), IMPORT_ERROR_COLUMNS, output)


def _one_line_per_row(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Continuation lines of a traceback as rows of their own, so the table stays aligned."""
    lines: list[dict[str, Any]] = []
    for row in rows:
        first, *rest = str(row["error"]).splitlines() or [""]
        lines.append({"filename": row["filename"], "error": first})
        lines.extend({"filename": "", "error": line} for line in rest)
    return lines


@dags_group.command("show")
@click.argument("dag_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(SHOW_FORMATS),
    default="text",
    show_default=True,
    help="Output format.",
)
@dags_folder_option
def dags_show(dag_id: str, fmt: str, dags_folder: Path | None) -> None:
    """Print a DAG's task graph as text, a Mermaid flowchart or a Graphviz digraph."""
    from minisched.db.session import create_session
    from minisched.scheduler.manual_runs import load_dag

    refresh_dags()
    with create_session() as session:
        dag = load_dag(dag_id, session=session)
    render = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}[fmt]
    click.echo(render(dag))


def render_text(dag: SerializedDag) -> str:
    """Tasks in dependency order, each with the tasks it waits for."""
    lines = [f"DAG {dag.dag_id} (schedule: {dag.schedule_text or 'None'})"]
    for task_id in dag.topological_order:
        upstream = dag.tasks[task_id].upstream_task_ids
        lines.append(f"  {task_id}" + (f"  <- {', '.join(upstream)}" if upstream else ""))
    return "\n".join(lines)


_MERMAID_SAFE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_mermaid(dag: SerializedDag) -> str:
    """A Mermaid flowchart, task groups as subgraphs; ids Mermaid cannot parse (dots, dashes,
    `end`) get a safe node name."""
    names = _mermaid_names(dag.topological_order)
    group_names = _mermaid_names(
        [g.group_id for g in dag.task_groups], taken=set(names.values()), prefix="group"
    )
    labels = {g.group_id: g.label for g in dag.task_groups}
    lines = ["graph LR"]

    def node(task_id: str) -> str:
        name = names[task_id]
        return f'{name}["{task_id}"]' if name != task_id else name

    lines += _group_blocks(dag, lambda g: [f'subgraph {group_names[g]} ["{labels[g]}"]'], node, "end")
    for task_id in dag.topological_order:
        task = dag.tasks[task_id]
        if task.task_group is None and (
            names[task_id] != task_id or not (task.upstream_task_ids or task.downstream_task_ids)
        ):
            lines.append(f"    {node(task_id)}")
    for task_id in dag.topological_order:
        for downstream in dag.tasks[task_id].downstream_task_ids:
            lines.append(f"    {names[task_id]} --> {names[downstream]}")
    return "\n".join(lines)


def _child_groups(dag: SerializedDag, parent: str | None) -> list[str]:
    return [g.group_id for g in dag.task_groups if g.parent_group_id == parent]


def _group_blocks(
    dag: SerializedDag,
    opening: Callable[[str], list[str]],
    task_line: Callable[[str], str],
    closing: str,
    *,
    parent: str | None = None,
    indent: str = "    ",
) -> list[str]:
    """The task groups below `parent` as nested blocks (a graph format's subgraphs): each block opens,
    holds its child groups and then its own tasks, and closes."""
    lines: list[str] = []
    for group_id in _child_groups(dag, parent):
        lines.extend(indent + line for line in opening(group_id))
        lines += _group_blocks(dag, opening, task_line, closing, parent=group_id, indent=indent + "    ")
        tasks = [t for t in dag.topological_order if dag.tasks[t].task_group == group_id]
        lines.extend(f"{indent}    {task_line(t)}" for t in tasks)
        lines.append(indent + closing)
    return lines


def _mermaid_names(ids: list[str], *, taken: set[str] | None = None, prefix: str = "task") -> dict[str, str]:
    taken = set(ids) | (taken or set())
    names: dict[str, str] = {}
    for index, given in enumerate(ids):
        if prefix == "task" and _MERMAID_SAFE_ID.match(given) and given.lower() != "end":
            names[given] = given
            continue
        name = f"{prefix}_{index}"
        while name in taken:
            name += "_"
        taken.add(name)
        names[given] = name
    return names


def render_dot(dag: SerializedDag) -> str:
    """A Graphviz digraph (`dot -Tpng`), task groups as clusters; ids never contain quotes."""
    labels = {g.group_id: g.label for g in dag.task_groups}
    lines = [f'digraph "{dag.dag_id}" {{', "    rankdir=LR;"]

    def opening(group_id: str) -> list[str]:
        return [f'subgraph "cluster_{group_id}" {{', f'    label="{labels[group_id]}";']

    lines += _group_blocks(dag, opening, lambda t: f'"{t}";', "}")
    lines.extend(f'    "{t}";' for t in dag.topological_order if dag.tasks[t].task_group is None)
    for task_id in dag.topological_order:
        for downstream in dag.tasks[task_id].downstream_task_ids:
            lines.append(f'    "{task_id}" -> "{downstream}";')
    lines.append("}")
    return "\n".join(lines)


@dags_group.command("pause")
@click.argument("dag_id")
@dags_folder_option
def dags_pause(dag_id: str, dags_folder: Path | None) -> None:
    """Stop creating and scheduling runs of a DAG (running tasks finish)."""
    _set_paused(dag_id, dags_folder, paused=True)


@dags_group.command("unpause")
@click.argument("dag_id")
@dags_folder_option
def dags_unpause(dag_id: str, dags_folder: Path | None) -> None:
    """Let the scheduler create and run runs of a DAG again."""
    _set_paused(dag_id, dags_folder, paused=False)


def _set_paused(dag_id: str, dags_folder: Path | None, *, paused: bool) -> None:
    from sqlalchemy import update

    from minisched.db.session import create_session
    from minisched.models import DagModel
    from minisched.scheduler.manual_runs import dag_not_found

    refresh_dags()
    with create_session() as session:
        result = session.execute(
            update(DagModel)
            .where(DagModel.dag_id == dag_id)
            .values(is_paused=paused)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            raise dag_not_found(dag_id)
    arguments = {"dag_id": dag_id, "dags_folder": str(dags_folder) if dags_folder else None}
    audit_cli("dags_pause" if paused else "dags_unpause", arguments, dag_id=dag_id)
    click.echo(f"DAG {dag_id} is {'paused' if paused else 'unpaused'}")


@dags_group.command("port")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the ported file here (default: print it on stdout).",
)
def dags_port(file: Path, out: Path | None) -> None:
    """Rewrite an Airflow 2 DAG FILE's imports to minisched's.

    Line numbers do not change. Anything minisched lacks is left as it is and listed on stderr
    as FILE:LINE; the exit code is then 1 (the ported file is still written).
    """
    import sys

    from minisched.exceptions import MinischedError
    from minisched.porting import port_source

    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MinischedError(f"cannot read {file}: {exc}") from None
    result = port_source(source, str(file))
    if out is None:
        click.echo(result.source, nl=False)
    else:
        out.write_text(result.source, encoding="utf-8")
    for item in result.leftovers:
        click.echo(f"{out or file}:{item.line}: {item.what}: {item.why}", err=True)
    summary = f"ported {len(result.ported)} imported name(s)" + (f" into {out}" if out else "")
    if result.leftovers:
        click.echo(
            f"{summary}; {len(result.leftovers)} thing(s) minisched lacks are left (listed above)", err=True
        )
        sys.exit(1)
    click.echo(summary, err=True)
