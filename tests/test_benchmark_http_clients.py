"""The benchmarks' HTTP load clients count what a server really answered: status 200 apart from other
statuses, and a response cut short (closed before its Content-Length) or without a Content-Length as
an error, never as an answer. They read only the status line and Content-Length, so these checks are
theirs to keep."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks.http_load import Server, hammer
from benchmarks.http_pace import pace
from benchmarks.http_wire import ResponseReader

BODY = b"x" * 70_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/short":  # says 70,000 bytes, sends 10, closes
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:10])
            self.close_connection = True
            return
        self.send_response(500 if self.path == "/fail" else 200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(httpd.server_address[1], os.getpid())
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_reader_returns_each_status_once_its_body_is_in_whatever_the_pieces() -> None:
    ours, theirs = socket.socketpair()
    reader = ResponseReader(ours)
    theirs.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n\r\nab")
    assert reader.feed() is None
    theirs.sendall(b"cde")
    assert reader.feed() == 404
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert reader.read_response() == 200
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcd")
    with pytest.raises(ValueError, match="more bytes"):
        reader.feed()


def test_reader_refuses_a_short_body_and_a_response_without_a_length() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    theirs.close()
    with pytest.raises(ConnectionError):
        ResponseReader(ours).read_response()
    ours, theirs = socket.socketpair()
    theirs.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    with pytest.raises(ValueError, match="Content-Length"):
        ResponseReader(ours).read_response()


@pytest.mark.parametrize(("path", "answered"), [("/ok", True), ("/fail", False), ("/short", False)])
def test_closed_loop_counts_only_whole_200_answers(server: Server, path: str, answered: bool) -> None:
    load = hammer(server, path, {"X-Test": "1"}, clients=1, seconds=0.3)
    assert (load.requests > 0, load.errors > 0) == (answered, not answered), load
    assert load.client_cpu_seconds > 0


@pytest.mark.parametrize(("path", "answered"), [("/ok", True), ("/fail", False), ("/short", False)])
def test_paced_load_counts_every_due_request_once(server: Server, path: str, answered: bool) -> None:
    paced = pace(server, path, {}, rate=100, seconds=0.3)
    assert paced.answered + paced.errors + paced.missed == 30, paced.summary()
    assert (paced.answered == 30) == answered, paced.summary()
    assert len(paced.answered_at) == paced.answered
    assert paced.client_cpu_seconds > 0
