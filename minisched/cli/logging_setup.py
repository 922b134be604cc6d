"""Log lines for long-running commands: timestamps, levels, and never a password."""

from __future__ import annotations

import logging


class _MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from minisched.settings import mask_secrets

        return mask_secrets(super().format(record))


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_MaskingFormatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("minisched").setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
