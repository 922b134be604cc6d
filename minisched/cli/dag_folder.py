"""`--dags-folder`, the same for every command that reads DAGs, and the refresh those commands run first.

The option makes DIR the configured DAG folder for the rest of the command (as if MINISCHED_DAGS_FOLDER
said so), so everything below reads one setting. `refresh_dags()` is the one way a command loads the
folder: changed files are parsed by the DAG file processor, outside any transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from minisched.dagfiles.loader import RefreshReport

F = TypeVar("F", bound=Callable[..., Any])


def _use_dags_folder(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        from minisched.settings import configure

        configure({"dags_folder": str(value)})
    return value


def dags_folder_option(func: F) -> F:
    """`--dags-folder DIR`: read DAGs from DIR (a folder, or a single file) instead of the configured one."""
    option = click.option(
        "--dags-folder",
        type=click.Path(exists=True, path_type=Path),
        default=None,
        callback=_use_dags_folder,
        help="Folder of DAG files (default: the configured dags_folder).",
    )
    return option(func)


def refresh_dags() -> RefreshReport:
    """Load the configured DAG folder into the DB; committed even if the command fails afterwards."""
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.settings import get_settings

    return refresh_dag_folder(get_settings().dags_folder)
