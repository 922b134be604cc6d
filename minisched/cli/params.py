"""Parameter types shared by the commands."""

from __future__ import annotations

import click

from minisched.inputs import MAX_INT


def count(minimum: int) -> click.IntRange:
    """An integer from `minimum` up to what an INTEGER column holds: a larger one is a usage error
    (exit 2) before anything is read or written, not a database overflow halfway."""
    return click.IntRange(min=minimum, max=MAX_INT)
