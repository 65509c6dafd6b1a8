"""The transport under the Novu client's requests.Session: kept-alive HTTP/1.1 connections to Novu.

``KeepAliveAdapter`` is a requests transport adapter (``Session.mount``) for one origin. A request
leaves in one write; the answer is read whole by a small HTTP/1.1 reader; the connection is kept for
the next call. NovuClient calls ``exchange`` (plain headers in, an ``NovuResponse`` out); ``send`` wraps
the same call in requests' PreparedRequest and Response for any other user of the session. A call
through a proxy, a streamed answer, or TLS settings other than the adapter's own go to requests'
``HTTPAdapter`` instead. An ``http://`` proxy given as ``proxy`` is the adapter's own: an ``https``
origin is reached through a ``CONNECT`` tunnel, a plain one by requests in absolute form. Why this
exists rather than urllib3, measured: bench/ANALYSIS.md.

What a call through the fast path guarantees:
- it ends within its time limit counted from its start (connecting included), whatever the network
  does: every socket operation waits at most for what is left of that limit;
- Novu's certificate is checked against the CA bundle the environment names (``trusted_ca_bundle``);
- an answer is read only if it is well-formed HTTP/1.1 and at most ``MAX_RESPONSE_BYTES``; anything
  else fails the call and closes the connection, which is never reused in an unknown state;
- a kept connection that turns out dead when reused is replaced, and the request sent once more.
"""

from __future__ import annotations

import http.client
import io
import os
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
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.auth import _basic_auth_str
from requests.structures import CaseInsensitiveDict
from requests.utils import get_auth_from_url, get_encoding_from_headers, select_proxy

# A kept connection idle longer than this is checked before reuse: Novu's servers may have closed it
# (Node.js closes idle connections after 5 s). A busier connection is sent on without the extra poll;
# should it be dead after all, the request is sent again on a new connection.
IDLE_CHECK_SECONDS = 1.0
# Novu's largest answers (a page of 100 workflows, a bulk of 100 triggers) are well under 1 MB. A
# larger answer fails the call unread: no claim of Novu's can make a request hold more than this.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# A socket's per-operation limit is set again only when it differs from what is left of the call by
# more than this: consecutive calls then reuse the limit already set, without a system call. So an
# operation may end this much before or after the call's limit.
LIMIT_TOLERANCE_SECONDS = 0.02
# CA bundle variables in the order requests reads them, then OpenSSL's (which the ssl module honours).
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 9112: chunk-size is hex digits only; extensions after ";" are ignored.
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?\r?\n")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_MAX_LINE = 65536
_MAX_HEADERS = 100
# Python's socket timeouts poll before every send and read: a system call that hands the GIL to
# another thread. On Linux a plain connection is left blocking and the kernel keeps the time limit
# (SO_RCVTIMEO, SO_SNDTIMEO). TLS sockets keep Python's timeouts: the ssl module retries a read the
# kernel timed out on a blocking socket instead of raising.
_KERNEL_TIMEOUTS = sys.platform.startswith("linux")


class ResponseTooLarge(requests.RequestException):
    """Novu's answer is larger than MAX_RESPONSE_BYTES; it was not read."""


def trusted_ca_bundle(environ=os.environ) -> str:
    """The CA bundle (a file, or a directory of hashed certificates) Novu's certificate is checked
    against: the first of ``CA_BUNDLE_VARIABLES`` set, else certifi's bundle, as requests does."""
    for name in CA_BUNDLE_VARIABLES:
        if environ.get(name):
            return environ[name]
    return requests.certs.where()


class _Receiver(io.RawIOBase):
    """Reads a kept connection's socket, each read bounded by what is left of the current call."""

    def __init__(self, kept: _Kept):
        self.kept = kept

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        kept = self.kept
        kept.bound()
        try:
            count = kept.sock.recv_into(buffer)
        except BlockingIOError:  # the kernel's receive time limit
            raise TimeoutError("timed out") from None
        kept.received += count
        return count


class _Kept:
    """A kept connection, the buffered reader its answers are read through, and the current call's
    end (``ends``, on the monotonic clock) that bounds every operation on it."""

    __slots__ = ("sock", "reader", "idle_since", "kernel_timed", "limit", "ends", "received")

    def __init__(self, sock: socket.socket, ends: float):
        self.sock = sock
        self.kernel_timed = _KERNEL_TIMEOUTS and not isinstance(sock, ssl.SSLSocket)
        self.limit = sock.gettimeout()
        if self.kernel_timed:
            sock.settimeout(None)
            self.limit = None
        self.reader = io.BufferedReader(_Receiver(self))
        self.idle_since = 0.0
        self.ends = ends
        self.received = 0  # bytes of the current call's answer received so far

    def bound(self) -> None:
        """Before each socket operation: the operation may wait only for what is left of the call."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        limit = self.limit
        if limit is None or abs(limit - left) > LIMIT_TOLERANCE_SECONDS:
            self._set_limit(left)

    def _set_limit(self, seconds: float) -> None:
        if self.kernel_timed:
            micro = max(1, round(seconds * 1_000_000))  # a zero timeval would mean no limit
            limit = struct.pack("@ll", *divmod(micro, 1_000_000))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        else:
            self.sock.settimeout(seconds)
        self.limit = seconds

    def send(self, message: bytes) -> None:
        view = memoryview(message)
        while view:
            self.bound()
            try:
                sent = self.sock.send(view)
            except BlockingIOError:  # the kernel's send time limit
                raise TimeoutError("timed out") from None
            view = view[sent:]

    def dropped(self) -> bool:
        """An idle connection that has something to read has been closed by the server."""
        try:
            if not hasattr(select, "poll"):  # Windows, for local runs
                return bool(select.select([self.sock], [], [], 0)[0])
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class KeepAliveAdapter(BaseAdapter):
    """Keeps up to ``pool_size`` idle connections to one origin (``base_url``); more calls at once
    than that open extra connections, closed after their call. ``ca_bundle``: what Novu's certificate
    is checked against (default: ``trusted_ca_bundle()``)."""

    def __init__(self, base_url: str, *, pool_size: int = 32, ca_bundle: str | None = None,
                 proxy: str | None = None, idle_check_seconds: float = IDLE_CHECK_SECONDS):
        super().__init__()
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        if proxy is not None and not self.carries(proxy):
            raise ValueError("only an http:// proxy is carried by the adapter itself")
        self.proxy = proxy
        self._proxy_headers = _proxy_headers(proxy) if proxy else {}
        self.pool_size = pool_size
        self.ca_bundle = ca_bundle or trusted_ca_bundle()
        self.idle_check_seconds = idle_check_seconds
        self._idle: list[_Kept] = []
        self._lock = threading.Lock()
        self._tls_context: ssl.SSLContext | None = None
        self._fallback: HTTPAdapter | None = None

    @staticmethod
    def carries(proxy: str | None) -> bool:
        """Can calls through ``proxy`` take the fast path? (SOCKS and TLS to the proxy cannot.)"""
        return proxy is not None and urlsplit(proxy).scheme == "http"

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        """requests' adapter interface. On the fast path the read timeout bounds the whole call."""
        own_trust = verify is True or verify == self.ca_bundle
        own_proxy = (select_proxy(request.url, proxies) if proxies else None) == self.proxy
        if stream or not own_trust or cert or not own_proxy:
            return self._send_through_fallback(request, stream, timeout, verify, cert, proxies)
        try:
            response = self.exchange(request.method, request.url, request.headers, request.body, timeout)
        except requests.RequestException as error:
            error.request = request
            raise
        return _as_requests_response(request, response)

    def exchange(self, method: str, url: str, headers, body: bytes | str | None, timeout) -> NovuResponse:
        """One call on a kept connection, without requests' Request and Response objects: NovuClient's
        way in. ``headers``: a mapping of names to str or bytes values. ``timeout``: seconds, or
        (connect limit, whole-call limit); the call ends within the whole-call limit from now.
        Failures raise the requests exceptions ``send`` raises."""
        connect_timeout, call_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        ends = time.monotonic() + (call_timeout if call_timeout is not None else 1e9)
        if self.proxy is not None and self.scheme == "http":  # absolute form, to the proxy
            message = _message(method, url, {**headers, **self._proxy_headers}, body, self.host_header, url)
        else:
            message = _message(method, url, headers, body, self.host_header, _target(url))
        kept = self._checkout(ends)
        while True:
            reused = kept is not None
            if kept is None:
                kept = self._connected(connect_timeout, ends)
            try:
                kept.send(message)
                response = _read_response(kept.reader, method)
            except (OSError, http.client.HTTPException, zlib.error, ResponseTooLarge) as error:
                kept.close()
                # A kept connection the server closed while idle fails before any byte of an
                # answer arrives: the request is sent once more, on a new connection.
                if reused and kept.received == 0 and _dead_connection(error) and _resendable(method, headers):
                    kept = None
                    continue
                if isinstance(error, ResponseTooLarge):
                    raise
                raise _requests_error(error, connecting=False) from error
            except BaseException:
                kept.close()
                raise
            break
        if response.keep_alive:
            self._checkin(kept)
        else:
            kept.close()
        return response

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for kept in idle:
            kept.close()
        if self._fallback is not None:
            self._fallback.close()

    def _checkout(self, ends: float) -> _Kept | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                kept = self._idle.pop()
            if time.monotonic() - kept.idle_since < self.idle_check_seconds or not kept.dropped():
                kept.ends, kept.received = ends, 0
                return kept
            kept.close()

    def _checkin(self, kept: _Kept) -> None:
        kept.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(kept)
                return
        kept.close()

    def _connected(self, connect_timeout: float | None, ends: float) -> _Kept:
        """A new connection (TCP, then TLS for https): each step within the connect limit, all within
        the call's end."""
        sock = None
        try:
            if self.proxy is None:
                address = (self.host, self.port)
            else:
                proxy = urlsplit(self.proxy)
                address = (proxy.hostname, proxy.port or 80)
            sock = socket.create_connection(address, _step_limit(connect_timeout, ends))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.proxy is not None and self.scheme == "https":
                self._tunnel(sock, connect_timeout, ends)
            if self.scheme == "https":
                sock.settimeout(_step_limit(connect_timeout, ends))
                sock = self._tls().wrap_socket(sock, server_hostname=self.host)
            return _Kept(sock, ends)
        except requests.exceptions.ProxyError:
            if sock is not None:
                sock.close()
            raise
        except (OSError, ValueError) as error:
            if sock is not None:
                sock.close()
            raise _requests_error(error, connecting=True) from error

    def _tunnel(self, sock: socket.socket, connect_timeout: float | None, ends: float) -> None:
        """Ask the proxy for a tunnel to the origin; on return the socket carries the origin's bytes."""
        authority = f"{self.host}:{self.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}",
                 *(f"{name}: {value}" for name, value in self._proxy_headers.items())]
        sock.settimeout(_step_limit(connect_timeout, ends))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:  # nothing follows the proxy's answer until the client speaks
            sock.settimeout(_step_limit(connect_timeout, ends))
            chunk = sock.recv(_MAX_LINE)
            if not chunk:
                raise requests.exceptions.ProxyError("the proxy closed the connection instead of a tunnel")
            head += chunk
            if len(head) > _MAX_LINE:
                raise requests.exceptions.ProxyError("the proxy's answer to CONNECT is too long")
        status_line = head.split(b"\r\n", 1)[0].decode("iso-8859-1")
        status = status_line.split(" ", 2)[1:2]
        if not status_line.startswith("HTTP/1.") or not status or not status[0].startswith("2"):
            raise requests.exceptions.ProxyError(f"the proxy refused a tunnel to Novu: {status_line[:100]!r}")
        if not head.endswith(b"\r\n\r\n"):
            raise requests.exceptions.ProxyError("the proxy sent bytes after its answer to CONNECT")

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            if os.path.isdir(self.ca_bundle):
                self._tls_context = ssl.create_default_context(capath=self.ca_bundle)
            else:
                self._tls_context = ssl.create_default_context(cafile=self.ca_bundle)
        return self._tls_context

    def _send_through_fallback(self, request, stream, timeout, verify, cert, proxies) -> requests.Response:
        with self._lock:
            if self._fallback is None:
                self._fallback = HTTPAdapter(pool_maxsize=self.pool_size, max_retries=0)
        if verify is True:
            verify = self.ca_bundle
        response = self._fallback.send(request, True, timeout, verify, cert, proxies)
        if stream:
            return response
        # Read now, as Session.send does, so the connection returns to its pool; at most the cap.
        try:
            content = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
        except urllib3.exceptions.HTTPError as error:
            response.close()
            kind = (requests.ReadTimeout if isinstance(error, urllib3.exceptions.ReadTimeoutError)
                    else requests.exceptions.ContentDecodingError if isinstance(error, urllib3.exceptions.DecodeError)
                    else requests.exceptions.ChunkedEncodingError)
            raise kind(error, request=request) from error
        if len(content) > MAX_RESPONSE_BYTES:
            response.close()
            raise ResponseTooLarge(f"answer larger than {MAX_RESPONSE_BYTES} bytes", request=request)
        response._content, response._content_consumed = content, True
        response.raw.release_conn()
        return response


def _step_limit(connect_timeout: float | None, ends: float) -> float:
    left = ends - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left if connect_timeout is None else min(connect_timeout, left)


def _resendable(method: str, headers) -> bool:
    """Invariant: a request is sent a second time only if that cannot make it act twice. A POST only
    with an Idempotency-Key: Novu answers a repeated key from its cache, and where Novu ignores the
    header, every POST NovuClient sends is idempotent by its body (triggers carry a transactionId
    Novu deduplicates; subscriber and topic POSTs upsert). PUT, PATCH and DELETE set or remove state."""
    if method != "POST":
        return True
    return "Idempotency-Key" in headers or any(name.lower() == "idempotency-key" for name in headers)


def _dead_connection(error: Exception) -> bool:
    """What a connection the server closed shows when written to or read: a reset, a broken pipe, an
    end of stream (TLS: an unexpected EOF). A time limit reached is not one: Novu may be working."""
    return isinstance(error, (ConnectionError, http.client.RemoteDisconnected, ssl.SSLEOFError,
                              ssl.SSLZeroReturnError))


def _proxy_headers(proxy: str) -> dict[str, str]:
    """Proxy-Authorization from the proxy URL's user and password, as requests sends it."""
    username, password = get_auth_from_url(proxy)
    return {"Proxy-Authorization": _basic_auth_str(username, password)} if username else {}


def _message(method: str, url: str, headers, body: bytes | str | None, host: str, target: str) -> bytes:
    """The request line, headers and body, sent in one write (http.client writes the body apart)."""
    lines = [f"{method} {target} HTTP/1.1"]
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
    """The body as sent, should a server compress it although the client asked for ``identity``;
    inflation stops past MAX_RESPONSE_BYTES."""
    encoding = (encoding or "").strip().lower()
    if encoding == "gzip":
        return _inflated(content, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return _inflated(content, zlib.MAX_WBITS)
        except zlib.error:
            return _inflated(content, -zlib.MAX_WBITS)
    return content


def _inflated(content: bytes, window_bits: int) -> bytes:
    inflater = zlib.decompressobj(window_bits)
    inflated = inflater.decompress(content, MAX_RESPONSE_BYTES + 1)
    if len(inflated) > MAX_RESPONSE_BYTES:
        raise ResponseTooLarge(f"answer inflates to more than {MAX_RESPONSE_BYTES} bytes")
    return inflated + inflater.flush()


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class NovuResponse:
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
        raise http.client.BadStatusLine(line[:100].decode("iso-8859-1"))
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


def _read_response(reader, method: str) -> NovuResponse:
    """One HTTP/1.1 answer, read whole, framed as RFC 9112 says: no body for HEAD, 204 and 304;
    chunked; Content-Length; else up to the end of the connection."""
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
        content, keep_alive = reader.read(MAX_RESPONSE_BYTES + 1), False  # delimited by the end of the connection
        if len(content) > MAX_RESPONSE_BYTES:
            raise ResponseTooLarge(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
    content = _decoded(content, headers.get("Content-Encoding"))
    return NovuResponse(status, reason, headers, content, keep_alive)


def _length(value: str) -> int:
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1 or not next(iter(lengths)).isdigit():
        raise http.client.HTTPException(f"invalid Content-Length {value[:40]!r}")
    length = int(lengths.pop())
    if length > MAX_RESPONSE_BYTES:
        raise ResponseTooLarge(f"answer of {length} bytes, more than {MAX_RESPONSE_BYTES}")
    return length


def _exactly(reader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise http.client.IncompleteRead(data, size - len(data))
    return data


def _chunked(reader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = _line(reader)
        framing = _CHUNK_SIZE.fullmatch(line)
        if framing is None:
            raise http.client.IncompleteRead(b"".join(parts))
        size = int(framing.group(1), 16)
        if size == 0:
            break
        total += size
        if total > MAX_RESPONSE_BYTES:
            raise ResponseTooLarge(f"chunked answer larger than {MAX_RESPONSE_BYTES} bytes")
        parts.append(_exactly(reader, size))
        if _line(reader) not in (b"\r\n", b"\n"):  # the line end that closes the chunk's data
            raise http.client.IncompleteRead(b"".join(parts))
    while _line(reader) not in (b"\r\n", b"\n", b""):  # trailer fields, unused
        pass
    return b"".join(parts)


def _as_requests_response(request, novu_response: NovuResponse) -> requests.Response:
    response = requests.Response()
    response.status_code = novu_response.status_code
    response.reason = novu_response.reason
    response.headers = novu_response.headers
    response.encoding = get_encoding_from_headers(novu_response.headers)
    response._content = novu_response.content
    response.url = request.url
    response.request = request
    return response


def _requests_error(error: Exception, *, connecting: bool) -> requests.RequestException:
    """The requests exception NovuClient classifies, for what the socket or the reader raised."""
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
