from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.scheduler.helpers import Procs


@pytest.fixture
def procs(env: Env, tmp_path: Path) -> Iterator[Procs]:
    """Starts minisched processes for the test; whatever is still running at the end is SIGKILLed."""
    folder = tmp_path / "procs"
    folder.mkdir()
    manager = Procs(env, folder)
    try:
        yield manager
    finally:
        manager.kill_all()
