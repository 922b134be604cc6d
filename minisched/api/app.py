"""The ASGI app of `minisched webserver`: the REST API under /api/v1 and the web UI at /."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from minisched.api import problems
from minisched.api.deps import TokenVerifier

API_PREFIX = "/api/v1"


def create_app(
    tokens: TokenVerifier | None = None, *, with_ui: bool = True, shortcut: bool = True
) -> FastAPI:
    """`tokens` checks Bearer tokens and UI logins (default: the `api_token` table); `shortcut`:
    plain `GET /api/v1/dags` requests are answered ahead of FastAPI's routing (api/shortcut.py;
    off only to compare the two)."""
    from importlib.metadata import version

    from minisched.api import (
        routes_dags,
        routes_monitoring,
        routes_pools,
        routes_runs,
        routes_secrets,
        routes_task_instances,
    )

    app = FastAPI(
        title="minisched API",
        version=version("minisched"),
        description="Airflow 2.10-shaped REST API of minisched. Send `Authorization: Bearer <token>`.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        # FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN: none is served.
        docs_url=None,
        redoc_url=None,
    )
    app.state.tokens = tokens if tokens is not None else _table_tokens()
    api = APIRouter(prefix=API_PREFIX)
    routers = (
        routes_monitoring,
        routes_dags,
        routes_runs,
        routes_task_instances,
        routes_pools,
        routes_secrets,
    )
    for module in routers:
        api.include_router(module.router)
    app.include_router(api)
    problems.install(app)
    if shortcut:
        from minisched.api.shortcut import DagListShortcut, ShortcutStats

        app.state.dag_list_shortcut = ShortcutStats()
        app.add_middleware(DagListShortcut, stats=app.state.dag_list_shortcut)
    if with_ui:
        from minisched.www.app import install_ui

        install_ui(app)
    return app


def _table_tokens() -> TokenVerifier:
    from minisched.db.session import new_session
    from minisched.service.tokens import TokenChecker

    return TokenChecker(new_session)


def app_factory() -> Any:
    """For `uvicorn --factory minisched.api.app:app_factory`."""
    return create_app()
