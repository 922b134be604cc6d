"""Match a user's regular expression with a time limit, in a child process.

A pattern such as `(a+)+$` backtracks for hours on a name like `aaaa...b`, and Python's `re` has no
timeout. So the matching runs in a fresh interpreter (`python -I` on this very file, standard library
only): it stops itself with SIGALRM after `limit` seconds (`re` checks for signals while it
backtracks), and the caller kills it if it does not answer soon after. The caller holds no database
transaction meanwhile: the names are read first, the matches used afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

#: Seconds of matching allowed; a sane pattern over thousands of ids takes microseconds.
DEFAULT_LIMIT = 2.0
#: Extra seconds for the child interpreter to start on a loaded machine before it is killed.
_STARTUP_GRACE = 30.0


class RegexError(ValueError):
    """The pattern cannot be used."""


class InvalidRegex(RegexError):
    """The pattern does not compile; the message is `re`'s reason."""


class RegexTimeout(RegexError):
    """Matching took longer than the limit."""


def search_names(pattern: str, names: Sequence[str], *, limit: float = DEFAULT_LIMIT) -> list[str]:
    """The names in which `pattern` is found (`re.search`), in their order; RegexTimeout past `limit`."""
    request = json.dumps({"pattern": pattern, "names": list(names), "limit": limit})
    try:
        done = subprocess.run(
            [sys.executable, "-I", __file__],
            input=request,
            capture_output=True,
            text=True,
            timeout=limit + _STARTUP_GRACE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RegexTimeout(_too_slow(pattern, limit)) from None
    try:
        reply = json.loads(done.stdout)
    except ValueError:
        raise RegexError(f"matching {pattern!r} failed (exit code {done.returncode})") from None
    if "timeout" in reply:
        raise RegexTimeout(_too_slow(pattern, limit))
    if "invalid" in reply:
        raise InvalidRegex(reply["invalid"])
    return [str(name) for name in reply["matched"]]


def _too_slow(pattern: str, limit: float) -> str:
    return (
        f"the regular expression {pattern!r} took longer than {limit:g} s to match and was stopped "
        "(it backtracks catastrophically); simplify it, e.g. avoid nested repetition like (a+)+"
    )


def _serve() -> None:
    """The child: read one request on stdin, answer on stdout (standard library only)."""
    import re
    import signal

    request = json.loads(sys.stdin.read())

    def stop(_signum: int, _frame: object) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, float(request["limit"]))
    try:
        compiled = re.compile(request["pattern"])
        reply: dict[str, object] = {"matched": [n for n in request["names"] if compiled.search(n)]}
    except re.error as exc:
        reply = {"invalid": str(exc)}
    except TimeoutError:
        reply = {"timeout": True}
    signal.setitimer(signal.ITIMER_REAL, 0)
    sys.stdout.write(json.dumps(reply))


if __name__ == "__main__":
    _serve()
