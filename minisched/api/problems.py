"""Every API error as RFC 7807 problem JSON (`application/problem+json`), as Airflow answers."""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from minisched.api.schemas import Problem
from minisched.exceptions import MinischedError
from minisched.service.errors import Conflict, NotFound

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}
#: Declared on every API route, so the OpenAPI spec says what errors look like.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": TITLES[status]}
    for status in (400, 401, 403, 404, 409)
}


def problem(status: int, detail: str, request: Request, headers: dict[str, str] | None = None) -> Response:
    """Problem JSON for the API; for a UI path, the UI's error page (when the UI is mounted)."""
    page_error = getattr(request.app.state, "page_error", None)
    if page_error is not None and not request.url.path.startswith("/api/"):
        return cast(Response, page_error(status, detail))
    body = Problem(
        type=f"https://httpstatuses.io/{status}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
    )
    return JSONResponse(
        body.model_dump(), status_code=status, media_type="application/problem+json", headers=headers
    )


def status_of(exc: MinischedError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def install(app: FastAPI) -> None:
    """Handlers for our errors, FastAPI's validation errors (400, not 422) and HTTP errors."""

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MinischedError)
        return problem(status_of(exc), str(exc), request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        wrong_type = not_json(request.headers.get("content-type"))
        if wrong_type is not None and any(error.get("loc", ())[:1] == ("body",) for error in exc.errors()):
            return problem(400, f"the request body must be JSON ({wrong_type}", request)
        return problem(400, describe_validation(exc), request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), request, headers=getattr(exc, "headers", None))

    async def on_bad_value(request: Request, exc: Exception) -> Response:
        return problem(400, cannot_store(exc), request)

    async def on_conflict(request: Request, exc: Exception) -> Response:
        return problem(409, f"the change conflicts with the stored data: {first_line(exc)}", request)

    async def on_fault(request: Request, exc: Exception) -> Response:
        # Starlette logs the traceback after this answers; the caller gets no internals.
        return problem(500, "the server failed to answer this request; its log says why", request)

    app.add_exception_handler(MinischedError, on_error)
    # What only the database can judge (NUL characters, too long, out of range, a duplicate key) is
    # the caller's input, not a server fault.
    app.add_exception_handler(DataError, on_bad_value)
    app.add_exception_handler(UnicodeEncodeError, on_bad_value)
    app.add_exception_handler(IntegrityError, on_conflict)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_fault)


def not_json(content_type: str | None) -> str | None:
    """Why a body of this content type is not read as JSON, or None when it is JSON."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    given = f"it was sent as {media}" if media else "it was sent without a Content-Type"
    return f"{given}; send Content-Type: application/json)"


def cannot_store(exc: Exception) -> str:
    """Why the database refused a value (too long, out of range, NUL...): the caller's input to fix."""
    return f"a value cannot be stored: {first_line(exc)}"


def first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe_validation(exc: RequestValidationError) -> str:
    """One line per bad field: where it is and what is wrong with it."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            position = error.get("loc", ("body", 0))[-1]
            cause = (error.get("ctx") or {}).get("error", "JSON decode error")
            parts.append(f"the request body is not valid JSON: {cause} at character {position}")
            continue
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = f"{where}: {error.get('msg', 'invalid')}"
        if error.get("loc", ("body",))[0] in ("query", "path") and isinstance(error.get("input"), str):
            # Name the value that was refused: a query string is easy to get wrong.
            message += f" (got {error['input']!r})"
        parts.append(message)
    return "; ".join(parts) or "invalid request"
