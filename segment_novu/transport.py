"""The transport under the Novu client's requests.Session: kept-alive HTTP/1.1 connections to Novu.

When Segment sends events one by one, each costs one Novu call, and the call was most of the bridge's
CPU. requests' own ``HTTPAdapter`` (urllib3) spends about 0.3 ms and eight system calls on one (a
liveness poll, headers and body in two writes, timeouts set again), and http.client alone parses an
answer's headers with the email package, a sixth of a single event's CPU. Each system call also hands
the GIL to another of the function's threads. ``KeepAliveAdapter``, a requests transport adapter
(``Session.mount``), writes a request in one write, reads the answer with a small HTTP/1.1 reader,
and keeps the connection for the next call. What it does not do itself, a call through a proxy, a
streamed answer, TLS settings other than the default, it passes to requests' ``HTTPAdapter``.
NovuClient calls ``exchange`` (plain headers in, an ``HTTPAnswer`` out) rather than ``send``, which wraps
the same call in requests' PreparedRequest and Response for any other user of the session.
"""

from __future__ import annotations

import http.client
import io
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy

# A kept connection idle longer than this is checked before reuse: Novu's servers may have closed it
# (Node.js closes idle connections after 5 s). A busier connection is sent on without the extra poll.
IDLE_CHECK_SECONDS = 1.0
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_MAX_LINE = 65536
_MAX_HEADERS = 100
# Python's socket timeouts poll before every send and read: a system call that hands the GIL to
# another thread, three per Novu call. On Linux a plain connection is left blocking and the kernel
# keeps the time limit (SO_RCVTIMEO, SO_SNDTIMEO). TLS sockets keep Python's timeouts: the ssl
# module retries a read the kernel timed out on a blocking socket instead of raising.
_KERNEL_TIMEOUTS = sys.platform.startswith("linux")


class _Receiver(io.RawIOBase):
    """Reads a blocking socket whose receive time limit the kernel keeps; a read it times out is a
    TimeoutError, as with Python's own socket timeouts."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self.sock.recv_into(buffer)
        except BlockingIOError:
            raise TimeoutError("timed out") from None


class _Kept:
    """A kept connection, the buffered reader its answers are read through, and its time limit."""

    __slots__ = ("connection", "reader", "idle_since", "kernel_timed", "limit")

    def __init__(self, connection: http.client.HTTPConnection):
        self.connection = connection
        sock = connection.sock
        self.kernel_timed = _KERNEL_TIMEOUTS and not isinstance(sock, ssl.SSLSocket)
        if self.kernel_timed:
            sock.settimeout(None)
            self.reader = io.BufferedReader(_Receiver(sock))
        else:
            self.reader = sock.makefile("rb")
        self.idle_since = 0.0
        self.limit = None if self.kernel_timed else sock.gettimeout()

    def set_limit(self, seconds: float | None) -> None:
        """Each send and each read on the connection may take up to ``seconds`` (None: no limit)."""
        if seconds == self.limit:
            return
        sock = self.connection.sock
        if self.kernel_timed:
            # None: no limit (a zero timeval to the kernel); otherwise at least a microsecond.
            micro = 0 if seconds is None else max(1, round(seconds * 1_000_000))
            limit = struct.pack("@ll", *divmod(micro, 1_000_000))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        else:
            sock.settimeout(seconds)
        self.limit = seconds

    def send(self, message: bytes) -> None:
        try:
            self.connection.sock.sendall(message)
        except BlockingIOError:  # the kernel's send time limit
            raise TimeoutError("timed out") from None

    def dropped(self) -> bool:
        """An idle connection that has something to read has been closed by the server."""
        sock = self.connection.sock
        try:
            if not hasattr(select, "poll"):  # Windows, for local runs
                return bool(select.select([sock], [], [], 0)[0])
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        self.reader.close()
        self.connection.close()


class KeepAliveAdapter(BaseAdapter):
    """Keeps up to ``pool_size`` idle connections to one origin (``base_url``); more calls at once
    than that open extra connections, closed after their call."""

    def __init__(self, base_url: str, *, pool_size: int = 32, ca_bundle: str | None = None,
                 idle_check_seconds: float = IDLE_CHECK_SECONDS):
        super().__init__()
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.pool_size = pool_size
        self.ca_bundle = ca_bundle or requests.certs.where()
        self.idle_check_seconds = idle_check_seconds
        self._idle: list[_Kept] = []
        self._lock = threading.Lock()
        self._tls_context: ssl.SSLContext | None = None
        self._fallback: HTTPAdapter | None = None

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if stream or verify is not True or cert or (proxies and select_proxy(request.url, proxies)):
            response = self._fallback_adapter().send(request, stream, timeout, verify, cert, proxies)
            if not stream:
                response.content  # read now, as Session.send does, so the connection returns to its pool
            return response
        try:
            answer = self.exchange(request.method, request.url, request.headers, request.body, timeout)
        except requests.RequestException as error:
            error.request = request
            raise
        return _response(request, answer)

    def exchange(self, method: str, url: str, headers, body: bytes | str | None, timeout) -> HTTPAnswer:
        """One call on a kept connection, without requests' Request and Response objects: NovuClient's
        way in. ``headers``: a mapping of names to str or bytes values. Failures raise the requests
        exceptions ``send`` raises."""
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        message = _message(method, url, headers, body, self.host_header)
        kept = self._checkout()
        if kept is None:
            try:
                kept = _Kept(self._connect(connect_timeout))
            except (OSError, http.client.HTTPException) as error:
                raise _requests_error(error, connecting=True) from error
        try:
            kept.set_limit(read_timeout)
            kept.send(message)
            answer = _read_answer(kept.reader, method)
        except (OSError, http.client.HTTPException, zlib.error) as error:
            kept.close()
            raise _requests_error(error, connecting=False) from error
        except BaseException:
            kept.close()
            raise
        if answer.keep_alive:
            self._checkin(kept)
        else:
            kept.close()
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for kept in idle:
            kept.close()
        if self._fallback is not None:
            self._fallback.close()

    def _checkout(self) -> _Kept | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                kept = self._idle.pop()
            if time.monotonic() - kept.idle_since < self.idle_check_seconds or not kept.dropped():
                return kept
            kept.close()

    def _checkin(self, kept: _Kept) -> None:
        kept.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(kept)
                return
        kept.close()

    def _connect(self, timeout) -> http.client.HTTPConnection:
        if self.scheme == "https":
            if self._tls_context is None:
                self._tls_context = ssl.create_default_context(cafile=self.ca_bundle)
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                                     context=self._tls_context)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        connection.connect()
        return connection

    def _fallback_adapter(self) -> HTTPAdapter:
        with self._lock:
            if self._fallback is None:
                self._fallback = HTTPAdapter(pool_maxsize=self.pool_size, max_retries=0)
            return self._fallback


def _message(method: str, url: str, headers, body: bytes | str | None, host: str) -> bytes:
    """The request line, headers and body, sent in one write (http.client writes the body apart)."""
    lines = [f"{method} {_target(url)} HTTP/1.1"]
    given = set()
    for name, value in headers.items():
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if not _HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
            raise requests.exceptions.InvalidHeader(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
        given.add(name.lower())
    if "host" not in given:
        lines.insert(1, f"Host: {host}")
    body = body.encode("utf-8") if isinstance(body, str) else body or b""
    if "content-length" not in given and (body or method in _METHODS_WITH_BODY):
        lines.append(f"Content-Length: {len(body)}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    except UnicodeEncodeError:
        raise requests.exceptions.InvalidHeader("a header or the URL has characters HTTP cannot carry") from None


def _decoded(content: bytes, encoding: str | None) -> bytes:
    """The body as sent, should a server compress it although the client asked for ``identity``."""
    encoding = (encoding or "").strip().lower()
    if encoding == "gzip":
        return zlib.decompress(content, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return zlib.decompress(content)
        except zlib.error:
            return zlib.decompress(content, -zlib.MAX_WBITS)
    return content


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class HTTPAnswer:
    """One HTTP answer, read whole; its fields are named as on requests' Response."""

    __slots__ = ("status_code", "reason", "headers", "content", "keep_alive")

    def __init__(self, status_code: int, reason: str, headers: CaseInsensitiveDict, content: bytes,
                 keep_alive: bool):
        self.status_code, self.reason, self.headers = status_code, reason, headers
        self.content, self.keep_alive = content, keep_alive


def _line(reader) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong("answer line")
    return line


def _status_and_headers(reader) -> tuple[str, int, str, CaseInsensitiveDict]:
    line = _line(reader)
    if not line:
        raise http.client.RemoteDisconnected("Novu closed the connection without answering")
    version, _, rest = line.decode("iso-8859-1").rstrip("\r\n").partition(" ")
    status, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(status) != 3 or not status.isdigit():
        raise http.client.BadStatusLine(line[:100])
    fields: dict[str, tuple[str, str]] = {}  # lower-case name → (name as sent, value)
    for _ in range(_MAX_HEADERS):
        line = _line(reader)
        if line in (b"\r\n", b"\n", b""):
            return version, int(status), reason.strip(), CaseInsensitiveDict(fields.values())
        name, colon, value = line.decode("iso-8859-1").partition(":")
        value = value.strip()
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise http.client.HTTPException(f"malformed header line {line[:100]!r}")
        key = name.lower()
        fields[key] = (name, f"{fields[key][1]}, {value}") if key in fields else (name, value)
    raise http.client.HTTPException(f"more than {_MAX_HEADERS} headers")


def _read_answer(reader, method: str) -> HTTPAnswer:
    """One HTTP/1.1 answer, read whole. http.client's own reader parses headers with the email
    package, which cost a sixth of a single event's CPU; this reads what HTTP/1.1 servers send."""
    version, status, reason, headers = _status_and_headers(reader)
    while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints) precede the real one
        version, status, reason, headers = _status_and_headers(reader)
    connection = headers.get("Connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    if method == "HEAD" or status in (204, 304):
        content = b""
    elif "chunked" in headers.get("Transfer-Encoding", "").lower():
        content = _chunked(reader)
    elif "Content-Length" in headers:
        content = _exactly(reader, _length(headers["Content-Length"]))
    else:
        content, keep_alive = reader.read(), False  # delimited by the end of the connection
    content = _decoded(content, headers.get("Content-Encoding"))
    return HTTPAnswer(status, reason, headers, content, keep_alive)


def _length(value: str) -> int:
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1 or not next(iter(lengths)).isdigit():
        raise http.client.HTTPException(f"invalid Content-Length {value[:40]!r}")
    return int(lengths.pop())


def _exactly(reader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise http.client.IncompleteRead(data, size - len(data))
    return data


def _chunked(reader) -> bytes:
    parts = []
    while True:
        size_text = _line(reader).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            break
        parts.append(_exactly(reader, size))
        _line(reader)  # the CRLF after the chunk
    while _line(reader) not in (b"\r\n", b"\n", b""):  # trailer fields, unused
        pass
    return b"".join(parts)


def _response(request, answer: HTTPAnswer) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status_code
    response.reason = answer.reason
    response.headers = answer.headers
    response.encoding = get_encoding_from_headers(answer.headers)
    response._content = answer.content
    response.url = request.url
    response.request = request
    return response


def _requests_error(error: Exception, *, connecting: bool) -> requests.RequestException:
    """The requests exception NovuClient classifies, for what http.client or the socket raised."""
    if isinstance(error, TimeoutError):
        kind = requests.ConnectTimeout if connecting else requests.ReadTimeout
        return kind(error)
    if isinstance(error, http.client.IncompleteRead):  # the answer was cut off after its headers
        return requests.exceptions.ChunkedEncodingError(error)
    if isinstance(error, zlib.error):
        return requests.exceptions.ContentDecodingError(error)
    if isinstance(error, ssl.SSLError):
        return requests.exceptions.SSLError(error)
    return requests.ConnectionError(error)
