"""The client side of keep-alive HTTP/1.1 GETs at the least CPU: the load clients share the 2 cores
with the server they measure, so every microsecond they spend per request is the server's.

The request is built once; of each response only the status line and Content-Length are parsed, and
the body is read into a reused buffer and dropped (no `http.client`, no header objects). What is
still checked: the status (the caller counts 200 apart from the rest), a head that is not HTTP/1.x
or has no Content-Length, a connection closed before the body's last byte (a short read), and more
bytes than the Content-Length said. One request is in flight per connection (no pipelining), so
every byte read belongs to the current response.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

BUFFER_BYTES = 256 * 1024
_HEAD_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


def request_bytes(path: str, headers: Mapping[str, str]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}\r\n".encode("latin-1")


def connect(port: int, *, blocking: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not blocking:
        sock.setblocking(False)
    return sock


class ResponseReader:
    """Reads responses from one connection, one `recv_into` per `feed` call, into one buffer."""

    __slots__ = ("buffer", "filled", "remaining", "sock", "status", "view")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray(BUFFER_BYTES)
        self.view = memoryview(self.buffer)
        self.filled = 0
        """Bytes of the head read so far (while `remaining` < 0)."""
        self.remaining = -1
        """Body bytes still to read; -1 until the head is complete."""
        self.status = 0

    def feed(self) -> int | None:
        """Read once; the status when the response's last byte is in, else None (read again when
        the socket is readable). Raises ConnectionError on a short read, ValueError on a bad head;
        a non-blocking socket with nothing to read raises BlockingIOError."""
        if self.remaining < 0:
            read = self.sock.recv_into(self.view[self.filled :])
            if not read:
                raise ConnectionError("connection closed before the response's head ended")
            self.filled += read
            end = self.buffer.find(_HEAD_END, 0, self.filled)
            if end < 0:
                if self.filled == BUFFER_BYTES:
                    raise ValueError("response head longer than the buffer")
                return None
            self.remaining = self._parse_head(end) - (self.filled - end - len(_HEAD_END))
            if self.remaining < 0:
                raise ValueError("more bytes than the Content-Length")
        elif self.remaining:
            read = self.sock.recv_into(self.view, min(self.remaining, BUFFER_BYTES))
            if not read:
                raise ConnectionError(f"connection closed {self.remaining} bytes before the body's end")
            self.remaining -= read
        if self.remaining:
            return None
        self.filled, self.remaining = 0, -1
        return self.status

    def _parse_head(self, end: int) -> int:
        """Keep the status; return the Content-Length."""
        head = bytes(self.view[:end]).lower()
        if not head.startswith((b"http/1.1 ", b"http/1.0 ")):
            raise ValueError(f"not an HTTP/1.x response: {head[:40]!r}")
        self.status = int(head[9:12])
        at = head.find(_LENGTH)
        if at < 0:
            raise ValueError("response without a Content-Length")
        value_end = head.find(b"\r\n", at + len(_LENGTH))
        return int(head[at + len(_LENGTH) : value_end if value_end >= 0 else len(head)])

    def read_response(self) -> int:
        """On a blocking socket: the status of the next whole response."""
        while (status := self.feed()) is None:
            pass
        return status
