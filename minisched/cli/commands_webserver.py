"""`minisched webserver`: the REST API (/api/v1) and the web UI, served by uvicorn."""

from __future__ import annotations

import click

DEFAULT_HOST = "127.0.0.1"


@click.command("webserver")
@click.option("--host", "-H", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port.")
def webserver(host: str, port: int) -> None:
    """Serve the REST API under /api/v1 and the web UI; log in with a token from `tokens create`."""
    import uvicorn

    from minisched.api.app import create_app
    from minisched.db.session import create_session
    from minisched.exceptions import MinischedError
    from minisched.service.tokens import any_token_exists

    with create_session() as session:
        has_tokens = any_token_exists(session=session)
    if not is_loopback(host) and not has_tokens:
        raise MinischedError(
            f"refusing to listen on {host} while no API token exists (anyone could reach it); create one "
            "with `minisched tokens create --name NAME --role admin`, or listen on 127.0.0.1"
        )
    if not has_tokens:
        click.echo(
            "No API token yet: create one to log in, e.g. `minisched tokens create --name me --role admin`",
            err=True,
        )
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"minisched webserver on http://{shown}:{port}/ (API: /api/v1, spec: /api/v1/openapi.json)", err=True
    )
    uvicorn.run(create_app(), host=host, port=port, log_level="info", access_log=False)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
