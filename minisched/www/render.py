"""The Jinja2 environment of the UI's templates, and the filters they format values with."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from minisched.www.colours import LIGHT_STATES, STATE_COLOURS, colour

REFRESH_SECONDS = 4
ACTIVE_STATES = frozenset({"queued", "running", "scheduled", "up_for_retry"})


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def text_colour(state: str | None) -> str:
    return "#1f2937" if (state or "none") in LIGHT_STATES else "#ffffff"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("minisched.www", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, duration=duration, colour=colour, text_colour=text_colour, path_part=path_part
    )
    env.globals.update(STATE_COLOURS=STATE_COLOURS, REFRESH_SECONDS=REFRESH_SECONDS)
    return env


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def is_active(state: str | None) -> bool:
    return state in ACTIVE_STATES


def path_part(value: str) -> str:
    """`value` quoted as one segment of a URL path ('/', '?', '#' and '%' included)."""
    from urllib.parse import quote

    return quote(value, safe="")
