"""The transport under the Novu client's requests.Session: kept-alive HTTP/1.1 connections to Novu.

requests' own ``HTTPAdapter`` (urllib3) spends, on every call, about 0.3 ms of CPU and eight system
calls (a liveness poll, the headers and the body in two writes, a poll before each socket operation,
timeouts set again): most of what the bridge costs per event when Segment sends events one by one,
and each system call hands the GIL to another of the function's threads. ``KeepAliveAdapter`` is a
requests transport adapter (``Session.mount``) that sends a request in one write, reads the answer
whole, and keeps the connection for the next call. What it does not do itself, a call through a
proxy or with TLS settings other than the default, it passes to requests' ``HTTPAdapter``.
"""

from __future__ import annotations

import http.client
import re
import select
import ssl
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


class _Kept:
    __slots__ = ("connection", "idle_since")

    def __init__(self, connection: http.client.HTTPConnection):
        self.connection = connection
        self.idle_since = 0.0

    def dropped(self) -> bool:
        """An idle connection that has something to read has been closed by the server."""
        sock = self.connection.sock
        if sock is None:
            return True
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        try:
            return bool(poller.poll(0))
        except OSError:
            return True


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
            return self._fallback_adapter().send(request, stream, timeout, verify, cert, proxies)
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        message = _message(request, self.host_header)
        kept = self._checkout()
        if kept is None:
            try:
                kept = _Kept(self._connect(connect_timeout))
            except (OSError, http.client.HTTPException) as error:
                raise _requests_error(error, connecting=True, request=request) from error
        connection = kept.connection
        sock = connection.sock
        answer = None
        try:
            if sock.gettimeout() != read_timeout:
                sock.settimeout(read_timeout)
            sock.sendall(message)
            answer = http.client.HTTPResponse(sock, method=request.method)
            answer.begin()
            content = _decoded(answer.read(), answer.getheader("Content-Encoding"))
        except (OSError, http.client.HTTPException, zlib.error) as error:
            _close(connection, answer)
            raise _requests_error(error, connecting=False, request=request) from error
        except BaseException:
            _close(connection, answer)
            raise
        if answer.will_close:
            _close(connection, answer)
        else:
            self._checkin(kept)
        return _response(request, answer, content)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for kept in idle:
            kept.connection.close()
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
            kept.connection.close()

    def _checkin(self, kept: _Kept) -> None:
        kept.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(kept)
                return
        kept.connection.close()

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


def _close(connection: http.client.HTTPConnection, answer: http.client.HTTPResponse | None) -> None:
    """The answer's reader holds the socket open too: both must be closed."""
    if answer is not None:
        answer.close()
    connection.close()


def _message(request, host: str) -> bytes:
    """The request line, headers and body, sent in one write (http.client writes the body apart)."""
    lines = [f"{request.method} {_target(request.url)} HTTP/1.1"]
    if "Host" not in request.headers:
        lines.append(f"Host: {host}")
    for name, value in request.headers.items():
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if not _HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
            raise requests.exceptions.InvalidHeader(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body or b""
    if "Content-Length" not in request.headers and (body or request.method in _METHODS_WITH_BODY):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


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


def _response(request, answer: http.client.HTTPResponse, content: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason
    response.headers = CaseInsensitiveDict(answer.getheaders())
    response.encoding = get_encoding_from_headers(response.headers)
    response._content = content
    response.url = request.url
    response.request = request
    return response


def _requests_error(error: Exception, *, connecting: bool, request) -> requests.RequestException:
    """The requests exception NovuClient classifies, for what http.client or the socket raised."""
    if isinstance(error, TimeoutError):
        kind = requests.ConnectTimeout if connecting else requests.ReadTimeout
        return kind(error, request=request)
    if isinstance(error, http.client.IncompleteRead):  # the answer was cut off after its headers
        return requests.exceptions.ChunkedEncodingError(error, request=request)
    if isinstance(error, zlib.error):
        return requests.exceptions.ContentDecodingError(error, request=request)
    if isinstance(error, ssl.SSLError):
        return requests.exceptions.SSLError(error, request=request)
    return requests.ConnectionError(error, request=request)
