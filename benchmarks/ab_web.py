"""Before/after of a web-server change: server CPU per answered request, two versions in turn.

    .venv/bin/python -m benchmarks.ab_web main WORKTREE                 # /api/v1/dags
    .venv/bin/python -m benchmarks.ab_web main WORKTREE --rounds 6 --path /api/v1/version

One home (SQLite) seeded with 1,000 DAGs and an admin token; one `minisched webserver` per REV (a git
revision, or WORKTREE; exported as `benchmarks.ab` does) on it, all started at once and loaded in
turn, REV after REV, by closed-loop `http_load` clients. Each turn's figure is the server process's
CPU (utime + stime, /proc) over the requests it answered meanwhile: what a shared machine's load
distorts least. Prints each REV's median milliseconds of CPU per request and its ratio to the first.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ab import export
from benchmarks.common import Home
from benchmarks.http_load import Server, free_port, hammer


def seed_home(root: Path, dags: int) -> tuple[Home, str]:
    """A SQLite home with `dags` DAGs and an admin token (made by this checkout's code)."""
    from benchmarks.bench_webserver import seed
    from benchmarks.common import in_process
    from minisched.db.migrate import initdb

    for name in ("dags", "logs"):
        (root / name).mkdir(parents=True)
    home = Home(root, f"sqlite:///{root / 'minisched.db'}")
    initdb(home.db_url)
    with in_process(home):
        token = seed(home, dags=dags, runs=1, tasks=2)
    return home, token


@contextmanager
def served(home: Home, code: Path, headers: dict[str, str]) -> Iterator[Server]:
    """`minisched webserver` of the code in `code` (first on PYTHONPATH; run from the home, so that
    `-m` does not put a checkout first)."""
    port = free_port()
    env = {**home.environ(), "PYTHONPATH": str(code)}
    log = open(home.root / f"server-{port}.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "minisched", "webserver", "--port", str(port)],
        cwd=home.root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/api/v1/version", headers=headers)
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{code}: the webserver did not start; see {log.name}")
            time.sleep(0.1)
        yield Server(port, server.pid)
    finally:
        server.terminate()
        server.wait(30)
        log.close()


#: Compared across the versions before timing: the same bytes are expected from each.
CHECKED = (
    "",
    "?limit=7&offset=3",
    "?order_by=-next_dagrun&limit=5",
    "?paused=false&dag_id_pattern=dag_00&order_by=-dag_id",
    "?offset=5000",
    "?limit=0",
)


def answers(server: Server, path: str, headers: dict[str, str]) -> list[tuple[int, bytes]]:
    """Status and body of `path` with each of `CHECKED`'s query strings."""
    found = []
    for query in CHECKED:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("GET", path + query, headers=headers)
        response = connection.getresponse()
        found.append((response.status, response.read()))
        connection.close()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_web", description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="+", help="git revisions, or WORKTREE")
    parser.add_argument("--path", default="/api/v1/dags")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--dags", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="minisched-abweb-") as tmp, ExitStack() as stack:
        home, token = seed_home(Path(tmp) / "home", args.dags)
        headers = {"Authorization": f"Bearer {token}"}
        codes = [export(rev, Path(tmp) / f"v{i}") for i, rev in enumerate(args.revs)]
        servers = [stack.enter_context(served(home, code, headers)) for code in codes]
        for server in servers:  # warm: the statements built, rows converted once
            hammer(server, args.path, headers, clients=1, seconds=1.0)
        expected = answers(servers[0], args.path, headers)
        for rev, server in zip(args.revs[1:], servers[1:], strict=True):
            same = "the same" if answers(server, args.path, headers) == expected else "NOT the same"
            print(f"{rev}: {same} answers as {args.revs[0]} ({len(CHECKED)} queries)")
        ms: list[list[float]] = [[] for _ in servers]
        rps: list[list[float]] = [[] for _ in servers]
        loads = []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for i, server in enumerate(servers):
                load = hammer(server, args.path, headers, clients=args.clients, seconds=args.seconds)
                if load.errors:
                    raise RuntimeError(f"{args.revs[i]}: {load.errors} errors")
                ms[i].append(1000 * load.server_cpu_seconds / max(load.requests, 1))
                rps[i].append(load.per_second)
        print(
            f"{args.path}: {args.rounds} rounds x {args.seconds:g}s x {args.clients} clients, "
            f"load average {min(loads):.1f}-{max(loads):.1f}"
        )
        first = statistics.median(ms[0])
        for rev, samples, rates in zip(args.revs, ms, rps, strict=True):
            median = statistics.median(samples)
            print(
                f"  {rev}: {median:.3f} ms CPU/request ({1000 / median:.0f} req/CPU-s, "
                f"{first / median:.2f}x), "
                f"{statistics.median(rates):.0f} req/s; rounds {', '.join(f'{s:.3f}' for s in samples)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
