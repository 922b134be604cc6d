"""`minisched runs`: the last runs of every DAG as a compact grid, the CLI's answer to Airflow's grid view."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from minisched.cli.output import output_option
from minisched.cli.params import count

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SYMBOLS = {"success": "S", "failed": "F", "running": "R", "queued": "Q"}
COLOURS = {"success": "green", "failed": "red", "running": "cyan", "queued": "yellow"}


@click.command("runs")
@click.option("--limit", "-n", type=count(1), default=25, show_default=True, help="Runs per DAG.")
@click.option("--dag-id", "-d", help="Only this DAG.")
@output_option
def runs(limit: int, dag_id: str | None, output: str) -> None:
    """The last runs of every DAG as a grid: a row per DAG, a cell per run (oldest first)."""
    from minisched.cli.output import to_jsonable
    from minisched.db.session import create_session

    with create_session() as session:
        grid = last_runs(session=session, limit=limit, dag_id=dag_id)
    if output == "json":
        payload = [
            {
                "dag_id": dag,
                "runs": [{key: to_jsonable(value) for key, value in run.items()} for run in cells],
            }
            for dag, cells in grid.items()
        ]
        click.echo(json.dumps(payload, indent=2))
    elif not grid:
        click.echo("No data found")
    else:
        click.echo(render_grid(grid, limit, colour=colour_enabled()))


def last_runs(*, session: Session, limit: int, dag_id: str | None) -> dict[str, list[dict[str, Any]]]:
    """dag_id -> its last `limit` runs, oldest first; every active DAG has a row, even without runs."""
    from sqlalchemy import func, select

    from minisched.models import DagModel, DagRun
    from minisched.scheduler.manual_runs import dag_not_found

    dags = select(DagModel.dag_id).where(DagModel.is_active).order_by(DagModel.dag_id)
    ranked = select(
        DagRun.dag_id,
        DagRun.run_id,
        DagRun.state,
        DagRun.logical_date,
        func.row_number()
        .over(partition_by=DagRun.dag_id, order_by=(DagRun.logical_date.desc(), DagRun.id.desc()))
        .label("position"),
    )
    if dag_id is not None:
        if session.get(DagModel, dag_id) is None:
            raise dag_not_found(dag_id)
        dags = select(DagModel.dag_id).where(DagModel.dag_id == dag_id)
        ranked = ranked.where(DagRun.dag_id == dag_id)
    window = ranked.subquery()
    rows = session.execute(
        select(window.c.dag_id, window.c.run_id, window.c.state, window.c.logical_date)
        .where(window.c.position <= limit)
        .order_by(window.c.dag_id, window.c.logical_date)
    )
    grid: dict[str, list[dict[str, Any]]] = {name: [] for name in session.scalars(dags)}
    for name, run_id, state, logical_date in rows:
        grid.setdefault(name, []).append({"run_id": run_id, "state": state, "logical_date": logical_date})
    return dict(sorted(grid.items()))


def colour_enabled() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return not os.environ.get("NO_COLOR") and sys.stdout.isatty()


def render_grid(grid: dict[str, list[dict[str, Any]]], limit: int, *, colour: bool) -> str:
    width = max(len("dag_id"), *(len(name) for name in grid))
    lines = [f"{'dag_id'.ljust(width)}  last {limit} runs, oldest -> newest"]
    for name, cells in grid.items():
        symbols = " ".join(_cell(run["state"], colour) for run in cells)
        lines.append(f"{name.ljust(width)}  {symbols}".rstrip())
    legend = "  ".join(f"{_cell(state, colour)} {state}" for state in SYMBOLS)
    lines.append(f"\n{legend}")
    return "\n".join(lines)


def _cell(state: str, colour: bool) -> str:
    symbol = SYMBOLS.get(state, "?")
    return click.style(symbol, fg=COLOURS.get(state), bold=True) if colour else symbol
