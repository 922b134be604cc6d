from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minisched.scheduler.executors.local import LocalExecutor
from minisched.scheduler.executors.sequential import SequentialExecutor
from tests.executors.helpers import write_dag


@pytest.fixture
def dag_file(tmp_path: Path) -> Path:
    return write_dag(tmp_path)


@pytest.fixture
def make_executor() -> Iterator[Callable[..., LocalExecutor]]:
    """Executors made here are stopped (and their workers reaped) after the test."""
    made: list[LocalExecutor] = []

    def make(parallelism: int = 2, *, sequential: bool = False) -> LocalExecutor:
        executor = SequentialExecutor() if sequential else LocalExecutor(parallelism)
        executor.start()
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.stop(grace=0)
