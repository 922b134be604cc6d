"""Reading and writing the JSON files of `connections`/`variables` import and export."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from minisched.cli.audit import audit_cli
from minisched.exceptions import MinischedError


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or one clear error naming the file and the problem."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MinischedError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MinischedError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MinischedError(f"{path} must hold a JSON object keyed by id, got {type(document).__name__}")
    return document


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable and writable by the owner only (it holds secrets)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        path.chmod(0o600)
    except OSError as exc:
        raise MinischedError(f"cannot write {path}: {exc.strerror or exc}") from None


def export_document(path: Path, document: Mapping[str, Any], *, kind: str) -> None:
    """Write an export (one entry per `kind`, secrets in clear) readable by its owner only, audit it
    as `<kind>s_export`, and say how many went."""
    write_private(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    audit_cli(f"{kind}s_export", {"file": str(path), "count": len(document)})
    click.echo(f"Exported {len(document)} {kind}(s) to {path}")


def report_import(path: Path, count: int, *, kind: str, arguments: Mapping[str, Any]) -> None:
    """Audit a committed import as `<kind>s_import` (the file and `arguments`), and say how many came."""
    audit_cli(f"{kind}s_import", {"file": str(path), **arguments})
    click.echo(f"Imported {count} {kind}(s) from {path}")
