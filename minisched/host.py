"""The name of the machine this process runs on, as recorded in `job` and `task_instance` rows.

One definition, so that recovery's "did this job run here?" compares like with like.
"""

from __future__ import annotations

import socket
from functools import cache


@cache
def hostname() -> str:
    return socket.gethostname()
