from __future__ import annotations

import pytest

from tests.celery.helpers import FAST_ENV, require_redis_url, unique
from tests.conftest import BACKENDS, Env


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The Celery executor needs PostgreSQL; SQLite is refused (tested on its own)."""
    if request.param != "postgresql":
        pytest.skip("the celery executor needs PostgreSQL (workers on other machines share the database)")
    return str(request.param)


@pytest.fixture
def celery_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    """`env`, set up for the celery executor on the shared test Redis, with a queue of its own."""
    from minisched import settings

    values = {
        "MINISCHED_EXECUTOR": "celery",
        "MINISCHED_CELERY_BROKER_URL": require_redis_url(),
        "MINISCHED_DEFAULT_QUEUE": unique("q"),
        **FAST_ENV,
    }
    env.vars.update(values)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings.configure()
    return env
