"""Fixtures shared by the whole suite: a fresh database per test on SQLite and on PostgreSQL.

PostgreSQL comes from MINISCHED_TEST_PG_URL (an admin URL; `.ci/run` starts a server and sets it).
Without it the PostgreSQL cases skip with a reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

if TYPE_CHECKING:
    from tests.scheduler.helpers import Procs

PG_ENV = "MINISCHED_TEST_PG_URL"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _require_pg() -> str:
    url = _pg_admin_url()
    if url is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {PG_ENV} is not set: the PostgreSQL tests must run in CI")
        pytest.skip(f"PostgreSQL not available: set {PG_ENV} (bash .ci/start-postgres prints one)")
    return url


def _with_database(admin_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def _pg_execute(admin_url: str, *statements: str) -> None:
    from sqlalchemy import create_engine, text

    from minisched.db.engine import parse_db_url

    engine = create_engine(parse_db_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Initialized template databases, made once per test process, copied for each test."""
    from minisched.db.migrate import initdb

    templates: dict[str, str] = {}
    sqlite_template = tmp_path_factory.mktemp("template") / "template.db"
    initdb(f"sqlite:///{sqlite_template}")
    templates["sqlite"] = str(sqlite_template)
    return templates


_pg_template_name: str | None = None


def _pg_template(admin_url: str) -> str:
    """A PostgreSQL database at head to clone with CREATE DATABASE ... TEMPLATE (fast per-test copies)."""
    global _pg_template_name
    if _pg_template_name is None:
        from minisched.db.migrate import initdb

        name = f"minisched_tpl_{uuid.uuid4().hex[:10]}"
        _pg_execute(admin_url, f'CREATE DATABASE "{name}"')
        initdb(_with_database(admin_url, name))
        _pg_template_name = name
    return _pg_template_name


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    admin_url = _pg_admin_url()
    if admin_url and _pg_template_name:
        _pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{_pg_template_name}" WITH (FORCE)')


@dataclass
class Database:
    backend: str
    url: str
    _cleanup: list[str] = field(default_factory=list)


def _new_database(backend: str, tmp_path: Path, *, initialized: bool, templates: dict[str, str]) -> Database:
    if backend == "sqlite":
        path = tmp_path / "minisched.db"
        if initialized:
            shutil.copyfile(templates["sqlite"], path)
        return Database("sqlite", f"sqlite:///{path}")
    admin_url = _require_pg()
    name = f"minisched_t_{uuid.uuid4().hex[:12]}"
    if initialized:
        _pg_execute(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template(admin_url)}"')
    else:
        _pg_execute(admin_url, f'CREATE DATABASE "{name}"')
    return Database("postgresql", _with_database(admin_url, name), [name])


def _drop(database: Database) -> None:
    admin_url = _pg_admin_url()
    for name in database._cleanup:
        if admin_url:
            _pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_db(backend: str, tmp_path: Path, _templates: dict[str, str]) -> Iterator[Database]:
    """A database with no tables at all (for migration tests)."""
    database = _new_database(backend, tmp_path, initialized=False, templates=_templates)
    yield database
    _drop(database)


@dataclass
class Env:
    """A minisched installation for one test: home folder, DAG folder, log folder, database."""

    home: Path
    dags_folder: Path
    logs_folder: Path
    db: Database
    vars: dict[str, str]

    @property
    def db_url(self) -> str:
        return self.db.url

    def write_dag(self, name: str, source: str) -> Path:
        path = self.dags_folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return path

    def run_cli(self, *args: str, input: str | None = None) -> Result:
        """Run a command in-process through click's test runner."""
        from minisched.cli import cli

        return CliRunner().invoke(cli, list(args), input=input, env=self.vars, catch_exceptions=False)

    def run_process(
        self, *args: str, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m minisched ARGS` as a real process."""
        return subprocess.run(
            [sys.executable, "-m", "minisched", *args],
            env={**os.environ, **self.vars},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "minisched", *args],
            env={**os.environ, **self.vars},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _make_env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    from minisched import settings
    from minisched.db import session

    home = tmp_path / "home"
    env = Env(
        home=home,
        dags_folder=home / "dags",
        logs_folder=home / "logs",
        db=database,
        vars={
            "MINISCHED_HOME": str(home),
            "MINISCHED_DB_URL": database.url,
            "MINISCHED_DAGS_FOLDER": str(home / "dags"),
            "MINISCHED_LOGS_FOLDER": str(home / "logs"),
            "MINISCHED_ZOMBIE_THRESHOLD": "60",
        },
    )
    env.dags_folder.mkdir(parents=True)
    for key in [k for k in os.environ if k.startswith("MINISCHED_") and k != PG_ENV]:
        monkeypatch.delenv(key)
    for key, value in env.vars.items():
        monkeypatch.setenv(key, value)
    settings.configure()
    session.configure_orm(database.url)
    return env


def _teardown_env() -> None:
    from minisched import settings
    from minisched.db import session

    engine = session._engine
    if engine is not None:
        checked_out = engine.pool.checkedout()  # type: ignore[attr-defined]
        session.dispose_orm()
        assert checked_out == 0, f"{checked_out} database connection(s) leaked by the test"
    settings._current = None


@pytest.fixture
def env(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _templates: dict[str, str]
) -> Iterator[Env]:
    """An initialized database (schema at head, default_pool) plus home/DAG/log folders, configured."""
    database = _new_database(backend, tmp_path, initialized=True, templates=_templates)
    try:
        yield _make_env(database, tmp_path, monkeypatch)
    finally:
        _teardown_env()
        _drop(database)


@pytest.fixture
def bare_env(empty_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """Like `env`, but the database is empty (no schema yet)."""
    try:
        yield _make_env(empty_db, tmp_path, monkeypatch)
    finally:
        _teardown_env()


@pytest.fixture(autouse=True)
def _no_lease_left_behind() -> Iterator[None]:
    """Tests that drive scheduler iterations by hand renew this process's lease and never end a loop;
    a later in-process executor test would then see it run out and fence its tries."""
    yield
    from minisched.scheduler.executors import lease

    lease.release()


@pytest.fixture
def procs(env: Env, tmp_path: Path) -> Iterator[Procs]:
    """Starts minisched processes for the test; whatever is still running at the end is SIGKILLed."""
    from tests.scheduler.helpers import Procs

    folder = tmp_path / "procs"
    folder.mkdir()
    manager = Procs(env, folder)
    try:
        yield manager
    finally:
        manager.kill_all()
