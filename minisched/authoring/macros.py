"""``macros`` in the template context: Airflow's date helpers and the modules it exposes.

Used as ``{{ macros.ds_add(ds, 7) }}`` or ``{{ macros.datetime(2024, 1, 1) }}``.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta

__all__ = ["datetime", "ds_add", "ds_format", "json", "random", "time", "timedelta", "uuid"]


def ds_add(ds: str, days: int) -> str:
    """``ds`` (YYYY-MM-DD) moved by ``days``: ``ds_add("2024-01-01", 5)`` is ``"2024-01-06"``."""
    if not days:
        return str(ds)
    return (datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """``ds`` re-read with ``input_format`` and written with ``output_format``."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)
