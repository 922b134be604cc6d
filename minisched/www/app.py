"""Mounts the UI on the app: static files, login/logout, the pages, and HTML error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from minisched.www import auth
from minisched.www.common import back_to
from minisched.www.render import page

STATIC = Path(__file__).with_name("static")
login_router = APIRouter(include_in_schema=False)


def install_ui(app: FastAPI) -> None:
    from minisched.www import pages_actions, pages_admin, pages_dags, pages_runs, pages_secrets

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (
        login_router,
        pages_dags.router,
        pages_runs.router,
        pages_actions.router,
        pages_admin.router,
        pages_secrets.router,
    ):
        app.include_router(router)

    async def to_login(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        response.delete_cookie(auth.COOKIE)
        return response

    async def forbidden(request: Request, exc: Exception) -> Response:
        return error_page(403, str(exc))

    app.add_exception_handler(auth.LoginRequired, to_login)
    app.add_exception_handler(auth.Forbidden, forbidden)
    app.state.page_error = error_page


def error_page(status: int, detail: str) -> HTMLResponse:
    titles = {400: "That did not work", 403: "Not allowed", 404: "Not found", 409: "Not now"}
    return page("error.html", status, title=titles.get(status, "Error"), detail=detail, actor=None)


@login_router.get("/login", response_class=HTMLResponse)
def login_form(next: str = "/") -> HTMLResponse:
    return page("login.html", actor=None, next=next, error=None)


@login_router.post("/login")
def login(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    auth.check_origin(request)
    info = request.app.state.tokens.check(token.strip()) if token.strip() else None
    if info is None:
        return page("login.html", 401, actor=None, next=next, error="That token is unknown or was revoked.")
    response = back_to(next, "/")
    response.set_cookie(
        auth.COOKIE,
        auth.sign(auth.new_session(info), auth.secret_key()),
        max_age=auth.MAX_AGE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@login_router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    session = auth.current_session(request)
    if session is not None:
        auth.check_csrf(request, session, csrf_token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE)
    return response
