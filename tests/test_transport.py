"""KeepAliveAdapter, the transport under the Novu client's requests.Session, against real servers.

Every server here listens on 127.0.0.1 and speaks HTTP/1.1 (or TLS) over real sockets; the ones that
misbehave write raw bytes. Calls go the way NovuClient sends them: a ``requests.Session`` with
``trust_env = False`` and the adapter mounted for ``base_url + "/"``.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import select
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from segment_novu.novu import NovuClient
from segment_novu.secrets import SecretSource
from segment_novu.transport import KeepAliveAdapter

TIMEOUT = (1.0, 2.0)
TRIGGER = "/v1/events/trigger"


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


class Origin:
    """An HTTP/1.1 server on 127.0.0.1, one thread per connection. ``answer(received)`` returns
    ``(bytes to write, close after?)``, or None to hold the connection without answering."""

    def __init__(self, answer, tls: ssl.SSLContext | None = None):
        self._answer = answer
        self._tls = tls
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
                sock.sendall(data)
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


@pytest.fixture
def serve():
    """Start Origins; all are closed after the test."""
    origins = []

    def start(answer, tls=None):
        origin = Origin(answer, tls)
        origins.append(origin)
        return origin

    yield start
    for origin in origins:
        origin.close()


@pytest.fixture
def client():
    """A Session with a KeepAliveAdapter mounted as NovuClient mounts it; closed after the test."""
    sessions = []

    def connect(base_url, **options):
        adapter = KeepAliveAdapter(base_url, **options)
        session = requests.Session()
        session.trust_env = False
        session.mount(base_url + "/", adapter)
        sessions.append(session)
        return session, adapter

    yield connect
    for session in sessions:
        session.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (IP SubjectAlternativeName): paths of cert and key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server_context(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def created(received):
    """Novu's answer to a trigger, echoing the target the server received."""
    body = json.dumps({"data": {"acknowledged": True, "path": received.target}}).encode()
    headers = [("Content-Type", "application/json; charset=utf-8"), ("Retry-After", "7")]
    return reply(201, "Created", body, headers=headers)


def test_sequential_calls_share_one_connection_and_answers_come_back_whole(serve, client):
    """The point of the adapter: one kept connection for a run of calls, each answer intact."""
    origin = serve(created)
    session, _ = client(origin.url)

    for number in range(5):
        response = session.post(f"{origin.url}{TRIGGER}?n={number}", data=b'{"name":"w"}',
                                headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
        assert response.status_code == 201
        assert response.reason == "Created"
        assert response.json() == {"data": {"acknowledged": True, "path": f"{TRIGGER}?n={number}"}}
        assert response.headers["retry-after"] == "7"
        assert response.headers["RETRY-AFTER"] == "7"
        assert response.encoding == "utf-8"
        assert response.url == f"{origin.url}{TRIGGER}?n={number}"

    assert origin.accepted == 1
    assert len(origin.requests) == 5


def test_request_arrives_as_sent(serve, client):
    """Method, target with its query string, body bytes and headers reach the server unchanged."""
    origin = serve(created)
    session, _ = client(origin.url)
    body = json.dumps({"name": "welcome", "to": {"subscriberId": "u-1"}, "pad": "x" * 300}).encode()
    headers = {"Authorization": "ApiKey secret-key", "Content-Type": "application/json",
               "Idempotency-Key": "sgmt-abc"}

    response = session.post(f"{origin.url}{TRIGGER}?dry=1&tag=a%20b", data=body, headers=headers,
                            timeout=TIMEOUT)

    assert response.status_code == 201
    [received] = origin.requests
    assert (received.method, received.target, received.version) == (
        "POST", f"{TRIGGER}?dry=1&tag=a%20b", "HTTP/1.1")
    assert received.body == body
    assert received.header("Authorization") == "ApiKey secret-key"
    assert received.header("Content-Type") == "application/json"
    assert received.header("Idempotency-Key") == "sgmt-abc"
    assert received.header("Content-Length") == str(len(body))
    assert received.header("Host") == f"127.0.0.1:{origin.port}"


def test_a_host_header_given_by_the_caller_is_sent_once(serve, client):
    origin = serve(created)
    session, _ = client(origin.url)

    session.post(origin.url + TRIGGER, data=b"{}", headers={"Host": "api.novu.co"}, timeout=TIMEOUT)

    [received] = origin.requests
    assert received.header("Host") == "api.novu.co"


def test_prepared_request_sent_like_novu_client_arrives_as_sent(serve, client):
    """NovuClient's path: session.send of a hand-built PreparedRequest, no redirects, explicit proxies."""
    origin = serve(lambda received: reply(204, "No Content"))
    session, _ = client(origin.url)
    request = requests.PreparedRequest()
    request.prepare(method="DELETE", url=origin.url + "/v1/subscribers/u%2F1",
                    headers={"Authorization": "ApiKey k", "User-Agent": "segment-novu-bridge/1.0"})

    response = session.send(request, timeout=TIMEOUT, allow_redirects=False, proxies={})

    assert response.status_code == 204
    assert response.content == b""
    [received] = origin.requests
    assert (received.method, received.target) == ("DELETE", "/v1/subscribers/u%2F1")
    assert received.header("User-Agent") == "segment-novu-bridge/1.0"
    assert received.header("Authorization") == "ApiKey k"
    assert received.body == b""


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="needs Linux TCP_INFO")
def test_request_headers_and_body_go_in_one_write(serve, client):
    """The module promises one write per request (http.client alone writes the body apart). A first
    recv() holding headers and body proves nothing on loopback: two quick writes often land together
    (both outcomes were seen). So the server asks the kernel: TCP_INFO's tcpi_data_segs_in counts the
    data segments received. With TCP_NODELAY (http.client sets it) a write of a few hundred bytes is
    one segment: one write gives 1, two writes 2 (300 runs of each, no exception)."""
    origin = serve(created)
    session, _ = client(origin.url)
    body = b'{"pad":"' + b"x" * 400 + b'"}'

    response = session.post(origin.url + TRIGGER, data=body, timeout=TIMEOUT,
                            headers={"Content-Type": "application/json"})

    assert response.status_code == 201
    [received] = origin.requests
    assert received.body == body
    assert received.data_segments == 1


def test_connection_close_answer_is_read_whole_and_next_call_reconnects(serve, client):
    """An answer framed by the server closing (Connection: close, no Content-Length) is read to EOF,
    and the closed connection is not kept."""
    body = b"z" * 3000

    def close_after_answer(received):
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n" + body, True

    origin = serve(close_after_answer)
    session, _ = client(origin.url)

    first = session.get(origin.url + "/v1/workflows", timeout=TIMEOUT)
    second = session.get(origin.url + "/v1/workflows", timeout=TIMEOUT)

    assert (first.status_code, first.content) == (200, body)
    assert (second.status_code, second.content) == (200, body)
    assert origin.accepted == 2


def test_idle_connection_closed_by_server_is_not_reused(serve, client):
    """A server may close a kept connection without saying so (Node's keep-alive timeout): once idle
    longer than idle_check_seconds, the adapter notices and opens a new connection."""
    origin = serve(lambda received: reply(200, body=b"ok", close=True))
    session, _ = client(origin.url, idle_check_seconds=0)

    assert session.get(origin.url + "/first", timeout=TIMEOUT).content == b"ok"
    assert origin.wait_until(lambda: origin.open_connections == 0)
    second = session.get(origin.url + "/second", timeout=TIMEOUT)

    assert (second.status_code, second.content) == (200, b"ok")
    assert origin.accepted == 2


def test_recently_used_connection_is_sent_on_without_the_liveness_check(serve, client):
    """The documented price of skipping the poll: a connection idle less than idle_check_seconds that
    the server silently closed fails the call with ConnectionError (the caller retries)."""
    origin = serve(lambda received: reply(200, body=b"ok", close=True))
    session, _ = client(origin.url, idle_check_seconds=60)

    assert session.get(origin.url + "/first", timeout=TIMEOUT).content == b"ok"
    assert origin.wait_until(lambda: origin.open_connections == 0)
    with pytest.raises(requests.ConnectionError) as raised:
        session.get(origin.url + "/second", timeout=TIMEOUT)

    assert type(raised.value) is requests.ConnectionError
    assert origin.accepted == 1


def test_read_timeout_raises_and_closes_the_connection(serve, client):
    """A server that accepts and never answers gives ReadTimeout after the read timeout. The
    connection, with an answer possibly still to come, is closed at once (while the caller still
    holds the exception, not when it is garbage collected) and never used again."""
    def silent_first(received):
        return None if received.target == "/silent" else reply(200, body=b"ok")

    origin = serve(silent_first)
    session, _ = client(origin.url)

    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout) as raised:
        session.get(origin.url + "/silent", timeout=(1.0, 0.2))
    elapsed = time.monotonic() - started

    assert type(raised.value) is requests.ReadTimeout
    assert 0.15 <= elapsed < 0.6
    assert origin.wait_until(lambda: origin.open_connections == 0)
    after = session.get(origin.url + "/healthy", timeout=TIMEOUT)
    assert (after.status_code, after.content) == (200, b"ok")
    assert origin.accepted == 2


def test_read_timeout_over_tls_raises_too(serve, client, certificate, tls_server_context):
    """TLS connections keep Python's socket timeouts (the ssl module would retry a read the kernel
    timed out): a silent server still gives ReadTimeout after the read timeout, not a hang."""
    origin = serve(lambda received: None, tls=tls_server_context)
    session, _ = client(origin.url, ca_bundle=certificate[0])

    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        session.get(origin.url + "/silent", timeout=(1.0, 0.2))

    assert 0.15 <= time.monotonic() - started < 0.6


def test_send_timeout_raises_when_the_server_reads_nothing(client):
    """A server that takes no data: once the kernel's buffers are full, the send gives up after the
    timeout (a Timeout, which NovuClient answers as retryable) instead of blocking for good."""
    listener = socket.create_server(("127.0.0.1", 0))  # never accepts: nothing is read
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    session, _ = client(base_url)
    raised = []

    def post():
        try:
            session.post(base_url + TRIGGER, data=b"x" * (64 * 1024 * 1024), timeout=(1.0, 0.3))
        except requests.RequestException as error:
            raised.append(error)

    sender = threading.Thread(target=post, daemon=True)
    sender.start()
    sender.join(3.0)
    finished = not sender.is_alive()
    listener.close()  # a send still blocked fails now, so a failing test does not hang the suite

    assert finished
    assert len(raised) == 1 and isinstance(raised[0], requests.Timeout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel-kept time limits are used on Linux")
def test_plain_connection_is_blocking_with_the_time_limit_kept_by_the_kernel(serve, client):
    """Python's socket timeouts poll before every send and read; a plain connection is instead left
    blocking with SO_RCVTIMEO and SO_SNDTIMEO set to the call's read timeout."""
    origin = serve(created)
    session, adapter = client(origin.url)

    session.post(origin.url + TRIGGER, data=b"{}", timeout=(1.0, 2.5))

    sock = adapter._idle[0].connection.sock
    assert sock.gettimeout() is None
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        assert struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, option, 16)) == (2, 500000)


def test_refused_connection_raises_connection_error_not_timeout(client, unused_port):
    """Nothing listening: ConnectionError itself, not ConnectTimeout (which NovuClient reads differently)."""
    base_url = f"http://127.0.0.1:{unused_port}"
    session, _ = client(base_url)

    with pytest.raises(requests.ConnectionError) as raised:
        session.post(base_url + TRIGGER, data=b"{}", timeout=TIMEOUT)

    assert type(raised.value) is requests.ConnectionError
    assert not isinstance(raised.value, requests.Timeout)


def test_answer_cut_short_mid_body_raises_chunked_encoding_error(serve, client):
    """Content-Length 100, 10 bytes, then close: the answer is incomplete, not a short success."""
    origin = serve(lambda received: (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"0123456789", True))
    session, _ = client(origin.url)

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT)


def test_garbage_instead_of_status_line_raises_connection_error(serve, client):
    """Something that does not speak HTTP answers: ConnectionError, and the connection is dropped."""
    origin = serve(lambda received: (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", False))
    session, _ = client(origin.url)

    with pytest.raises(requests.ConnectionError) as raised:
        session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT)

    assert type(raised.value) is requests.ConnectionError
    assert origin.wait_until(lambda: origin.open_connections == 0)


def test_chunked_answer_is_read_whole_and_connection_kept(serve, client):
    """Transfer-Encoding: chunked answers are joined, and the connection stays usable."""
    def chunked(received):
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\n{\"a\":\r\n"
                b"A\r\n[1,2,3,4]}\r\n"
                b"0\r\n\r\n"), False

    origin = serve(chunked)
    session, _ = client(origin.url)

    answers = [session.get(origin.url + "/v1/x", timeout=TIMEOUT) for _ in range(2)]

    assert [answer.content for answer in answers] == [b'{"a":[1,2,3,4]}'] * 2
    assert answers[0].json() == {"a": [1, 2, 3, 4]}
    assert origin.accepted == 1


def test_more_concurrent_calls_than_pool_size_succeed_and_only_pool_size_are_kept(serve, client):
    """Six calls at once with pool_size=2: six connections (the server holds every answer until all
    six requests are in), all answered; then the server sees four of them closed and two kept, and
    later calls reuse those two."""
    calls = 6
    all_in = threading.Barrier(calls, timeout=2)

    def answer_when_all_in(received):
        if received.target == "/concurrent":
            all_in.wait()
        return created(received)

    origin = serve(answer_when_all_in)
    session, _ = client(origin.url, pool_size=2)
    statuses = []

    def call():
        statuses.append(session.post(origin.url + "/concurrent", data=b"{}", timeout=TIMEOUT).status_code)

    threads = [threading.Thread(target=call) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3)

    assert statuses == [201] * calls
    assert origin.accepted == calls
    assert origin.wait_until(lambda: origin.open_connections == 2)
    time.sleep(0.05)
    assert origin.open_connections == 2
    for _ in range(3):
        assert session.post(origin.url + "/after", data=b"{}", timeout=TIMEOUT).status_code == 201
    assert origin.accepted == calls


@pytest.mark.parametrize("key", ["http", "all", "http://127.0.0.1"])
def test_proxy_for_the_scheme_sends_the_call_through_the_proxy(serve, client, unused_port, key):
    """With a proxy configured (for the scheme, for everything, or for the host) the call goes to the
    proxy (absolute-form request line), not to the origin, which here has nothing listening."""
    proxy = serve(lambda received: reply(202, "Accepted", b'{"via":"proxy"}',
                                         headers=[("Content-Type", "application/json")]))
    base_url = f"http://127.0.0.1:{unused_port}"
    session, _ = client(base_url)
    request = requests.Request("POST", base_url + TRIGGER, data=b'{"name":"w"}',
                               headers={"Authorization": "ApiKey k"}).prepare()

    response = session.send(request, timeout=TIMEOUT, allow_redirects=False, proxies={key: proxy.url})

    assert (response.status_code, response.json()) == (202, {"via": "proxy"})
    [received] = proxy.requests
    assert f"{received.method} {received.target} {received.version}" == (
        f"POST http://127.0.0.1:{unused_port}{TRIGGER} HTTP/1.1")
    assert received.body == b'{"name":"w"}'
    assert received.header("Authorization") == "ApiKey k"


def test_novu_client_sends_through_a_proxy_from_the_environment(serve, unused_port, monkeypatch):
    """NovuClient hands its calls straight to the transport, except when the environment names a
    proxy for Novu's URL: then they go through the session, and so through the proxy."""
    proxy = serve(lambda received: reply(202, "Accepted", b'{"via":"proxy"}',
                                         headers=[("Content-Type", "application/json")]))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    base_url = f"http://127.0.0.1:{unused_port}"
    novu = NovuClient(base_url, SecretSource("nk-1"))

    response = novu.call("POST", TRIGGER, {"name": "w"}, time.monotonic() + 5, idempotent=True)

    assert (response.status_code, json.loads(response.content)) == (202, {"via": "proxy"})
    [received] = proxy.requests
    assert f"{received.method} {received.target}" == f"POST {base_url}{TRIGGER}"
    assert received.body == b'{"name":"w"}'
    assert received.header("Authorization") == "ApiKey nk-1"
    assert received.header("Idempotency-Key").startswith("sgmt-")
    novu.session.close()


def test_streamed_call_is_served_by_requests_own_adapter(serve, client):
    """stream=True needs a readable raw body, which only requests' HTTPAdapter provides."""
    origin = serve(lambda received: reply(200, body=b"streamed body"))
    session, _ = client(origin.url)

    response = session.get(origin.url + "/stream", timeout=TIMEOUT, stream=True)

    assert b"".join(response.iter_content(4)) == b"streamed body"
    response.close()


def test_https_with_ca_bundle_succeeds_and_reuses_the_connection(serve, client, certificate,
                                                                  tls_server_context):
    """ca_bundle lets the adapter trust a given certificate; the TLS connection is kept like a plain
    one, and passes the liveness check (idle_check_seconds=0) between calls."""
    origin = serve(created, tls=tls_server_context)
    session, _ = client(origin.url, ca_bundle=certificate[0], idle_check_seconds=0)

    answers = [session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [201, 201]
    assert answers[1].json() == {"data": {"acknowledged": True, "path": TRIGGER}}
    assert origin.accepted == 1


def test_https_with_default_bundle_rejects_unknown_certificate(serve, client, tls_server_context):
    """Without ca_bundle the certifi bundle applies and a self-signed certificate is refused."""
    origin = serve(created, tls=tls_server_context)
    session, _ = client(origin.url)

    with pytest.raises(requests.exceptions.SSLError) as raised:
        session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT)

    assert type(raised.value) is requests.exceptions.SSLError
    assert origin.requests == []


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_is_served_by_requests_own_adapter(serve, client, tls_server_context):
    """verify=False is a TLS setting the adapter does not handle itself: requests' HTTPAdapter honours it."""
    origin = serve(created, tls=tls_server_context)
    session, _ = client(origin.url)

    response = session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT, verify=False)

    assert response.status_code == 201


def test_close_closes_idle_connections(serve, client):
    """adapter.close() ends the kept connections: the server reads EOF on them."""
    origin = serve(created)
    session, adapter = client(origin.url)
    assert session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT).status_code == 201
    time.sleep(0.05)
    assert origin.open_connections == 1

    adapter.close()

    assert origin.wait_until(lambda: origin.open_connections == 0)
    assert origin.accepted == 1


def test_gzip_answer_is_decoded(serve, client):
    """A session with requests' default headers advertises gzip, and a server may compress anyway:
    the caller gets the JSON, as it would through requests' HTTPAdapter."""
    document = {"data": [{"workflowId": f"w-{number}"} for number in range(50)]}

    def compressed(received):
        return reply(200, body=gzip.compress(json.dumps(document).encode()),
                     headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip")])

    origin = serve(compressed)
    session, _ = client(origin.url)

    response = session.get(origin.url + "/v1/workflows", timeout=TIMEOUT)

    assert origin.requests[0].header("Accept-Encoding") == "gzip, deflate"
    assert response.json() == document


# -- reading answers: what HTTP/1.1 servers send, read without http.client's header parser -------------


def test_interim_answer_is_skipped_and_repeated_headers_are_joined(serve, client):
    """A 100 Continue before the real answer is passed over; a header sent twice reads as one list."""
    origin = serve(lambda received: (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 429 Too Many Requests\r\nX-Seen: a\r\nx-seen: b\r\nRetry-After: 7\r\n"
        b"Content-Length: 2\r\n\r\n{}", False))
    session, _ = client(origin.url)

    response = session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT)

    assert (response.status_code, response.reason, response.content) == (429, "Too Many Requests", b"{}")
    assert response.headers["x-seen"] == "a, b"
    assert response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [204, 304])
def test_answers_without_a_body_keep_the_connection(serve, client, status):
    origin = serve(lambda received: (f"HTTP/1.1 {status} Nothing\r\n\r\n".encode(), False))
    session, _ = client(origin.url)

    answers = [session.delete(origin.url + "/v2/subscribers/u-1", timeout=TIMEOUT) for _ in range(2)]

    assert [(answer.status_code, answer.content) for answer in answers] == [(status, b"")] * 2
    assert origin.accepted == 1


def test_an_http_1_0_answer_closes_the_connection(serve, client):
    origin = serve(lambda received: (b"HTTP/1.0 201 Created\r\nContent-Length: 2\r\n\r\n{}", False))
    session, _ = client(origin.url)

    answers = [session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [201, 201]
    assert origin.accepted == 2


@pytest.mark.parametrize("answer, error", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}", requests.ConnectionError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", requests.ConnectionError),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\n{}", requests.ConnectionError),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}", requests.ConnectionError),
    (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", requests.ConnectionError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", requests.exceptions.ChunkedEncodingError),
], ids=["conflicting-length", "negative-length", "malformed-header", "header-too-long", "bad-status",
        "bad-chunk-size"])
def test_a_malformed_answer_fails_the_call_and_drops_the_connection(serve, client, answer, error):
    """Never a guess at what Novu meant: the call fails with a requests error NovuClient classifies as
    retryable, and the connection, in an unknown state, is closed."""
    origin = serve(lambda received: (answer, False))
    session, _ = client(origin.url)

    with pytest.raises(error) as raised:
        session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT)

    assert type(raised.value) is error
    assert origin.wait_until(lambda: origin.open_connections == 0)


def test_a_header_http_cannot_carry_fails_the_call_before_anything_is_sent(serve, client):
    """A key pasted with a stray character: a requests error NovuClient classifies, nothing on the wire."""
    origin = serve(created)
    session, _ = client(origin.url)

    with pytest.raises(requests.exceptions.InvalidHeader):
        session.post(origin.url + TRIGGER, data=b"{}", headers={"Authorization": "ApiKey kéy\u2028"},
                     timeout=TIMEOUT)
    # Built by hand as NovuClient does, so requests' own header check never runs: the transport's does.
    injected = requests.PreparedRequest()
    injected.method, injected.url, injected.body, injected.hooks = "POST", origin.url + TRIGGER, b"{}", {}
    injected.headers = requests.structures.CaseInsensitiveDict({"Authorization": "ApiKey k\r\nX-Injected: 1"})
    with pytest.raises(requests.exceptions.InvalidHeader):
        session.get_adapter(origin.url + TRIGGER).send(injected, timeout=TIMEOUT, proxies={})

    assert origin.accepted == 0
