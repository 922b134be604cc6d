"""Alembic environment: the URL comes from minisched's settings.

So `alembic upgrade head` run from the repository root and `minisched upgradedb` do the same thing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from minisched.db.engine import make_engine
from minisched.models import Base
from minisched.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table instead
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().db_url
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().db_url
    engine = make_engine(url, for_migrations=True)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
