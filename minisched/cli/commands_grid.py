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
    """dag_id -> its last `limit` runs, oldest first; every active DAG has a row, even without runs (and a
    deactivated DAG has one while its runs remain)."""
    from sqlalchemy import select

    from minisched.models import DagModel, DagRun
    from minisched.scheduler.manual_runs import dag_not_found
    from minisched.service.runs import recent_runs

    if dag_id is not None:
        if session.get(DagModel, dag_id) is None:
            raise dag_not_found(dag_id)
        names = [dag_id]
    else:
        active = set(session.scalars(select(DagModel.dag_id).where(DagModel.is_active)))
        names = sorted(active | set(session.scalars(select(DagRun.dag_id).distinct())))
    runs = recent_runs(names, limit, session=session)
    return {
        name: [{"run_id": r.run_id, "state": r.state, "logical_date": r.logical_date} for r in runs[name]]
        for name in names
    }


def colour_enabled() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return not os.environ.get("NO_COLOR") and sys.stdout.isatty()


def render_grid(grid: dict[str, list[dict[str, Any]]], limit: int, *, colour: bool) -> str:
    symbols = _symbols()
    width = max(len("dag_id"), *(len(name) for name in grid))
    lines = [f"{'dag_id'.ljust(width)}  last {limit} runs, oldest -> newest"]
    for name, cells in grid.items():
        row = " ".join(_cell(symbols.get(run["state"]), colour) for run in cells)
        lines.append(f"{name.ljust(width)}  {row}".rstrip())
    legend = "  ".join(f"{_cell(symbol, colour)} {state}" for state, symbol in symbols.items())
    lines.append(f"\n{legend}")
    return "\n".join(lines)


def _symbols() -> dict[str, tuple[str, str]]:
    """A run state's letter and colour in the grid (the models load only once a command runs)."""
    from minisched.models import DagRunState as R

    return {
        R.SUCCESS: ("S", "green"),
        R.FAILED: ("F", "red"),
        R.RUNNING: ("R", "cyan"),
        R.QUEUED: ("Q", "yellow"),
    }


def _cell(symbol: tuple[str, str] | None, colour: bool) -> str:
    letter, fg = symbol or ("?", None)
    return click.style(letter, fg=fg, bold=True) if colour else letter
