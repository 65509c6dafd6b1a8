"""A raw HTTP/1.1 server on loopback for transport tests: it records each request as read off the
wire and answers with whatever bytes a test gives it, at whatever pace, over plain TCP or TLS."""

from __future__ import annotations

import select
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Received:
    """One request as the server read it off the wire."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    data_segments: int | None  # TCP data segments received on the connection once this request was in

    def header(self, name: str) -> str:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) == 1, f"{name}: {values}"
        return values[0]


def reply(status=200, reason="OK", body=b"", headers=(), close=False):
    """An answer for Origin: the bytes of a Content-Length framed response, and whether to close after."""
    head = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers),
            f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body, close


def tcp_data_segments_in(sock) -> int | None:
    """Linux's tcpi_data_segs_in: how many TCP segments carrying data this socket has received."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    except OSError:
        return None
    return struct.unpack_from("I", info, 152)[0] if len(info) >= 156 else None


def drip(head: bytes, byte: bytes, interval: float, count: int):
    """An answer written slowly: ``head`` at once, then ``byte`` every ``interval`` seconds, ``count`` times."""
    yield head
    for _ in range(count):
        time.sleep(interval)
        yield byte


class Origin:
    """An HTTP/1.1 server on 127.0.0.1, one thread per connection. ``answer(received)`` returns
    ``(bytes to write, close after?)``, or None to hold the connection without answering; instead of
    bytes, an iterable of byte strings (``drip``) is written piece by piece. Over TLS the handshake
    starts ``handshake_delay`` seconds after the connection is accepted."""

    def __init__(self, answer, tls: ssl.SSLContext | None = None, handshake_delay: float = 0.0):
        self._answer = answer
        self._tls = tls
        self.handshake_delay = handshake_delay
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.requests: list[Received] = []
        self.accepted = 0
        self.ended = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self.accepted - self.ended

    def wait_until(self, condition, timeout=1.0) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self):
        self._stop.set()
        self._acceptor.join()
        self._listener.close()
        with self._lock:
            for sock in self._connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threads = list(self._threads)
        for thread in threads:
            thread.join(2)

    def _accept_loop(self):
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], 0.02)
            if not readable:
                continue
            sock, _ = self._listener.accept()
            sock.settimeout(5)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self.accepted += 1
                self._connections.append(sock)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock):
        try:
            if self._tls is not None:
                wrapped = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                with self._lock:
                    self._connections[self._connections.index(sock)] = wrapped
                sock = wrapped
                if self._stop.wait(self.handshake_delay):
                    return
                sock.do_handshake()
            pending = b""
            while True:
                received, pending = self._read_request(sock, pending)
                if received is None:
                    return
                with self._lock:
                    self.requests.append(received)
                answer = self._answer(received)
                if answer is None:
                    continue
                data, close = answer
                for piece in [data] if isinstance(data, bytes) else data:
                    if self._stop.is_set():
                        return
                    sock.sendall(piece)
                if close:
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.remove(sock)
            sock.close()
            with self._lock:
                self.ended += 1

    @staticmethod
    def _read_request(sock, pending):
        while b"\r\n\r\n" not in pending:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            pending += chunk
        head, pending = pending.split(b"\r\n\r\n", 1)
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
        length = int(dict((key.lower(), value) for key, value in headers).get("content-length", "0"))
        while len(pending) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            pending += chunk
        body, pending = pending[:length], pending[length:]
        received = Received(method, target, version, headers, body, tcp_data_segments_in(sock))
        return received, pending
