"""Reading and writing the JSON files of `connections`/`variables` import and export."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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
