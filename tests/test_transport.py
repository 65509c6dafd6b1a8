"""KeepAliveAdapter, the transport under the Novu client's requests.Session, against real servers.

Every server here listens on 127.0.0.1 and speaks HTTP/1.1 (or TLS) over real sockets; the ones that
misbehave write raw bytes. Calls go the way NovuClient sends them: a ``requests.Session`` with
``trust_env = False`` and the adapter mounted for ``base_url + "/"``.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import pytest
import requests

from segment_novu.novu.client import NovuClient
from segment_novu.novu.transport import (
    MAX_RESPONSE_BYTES,
    KeepAliveAdapter,
    ResponseTooLarge,
)
from segment_novu.secrets import SecretSource
from tests.private_ca import PrivateCA
from tests.raw_origin import Origin, drip, reply
from tests.tunnel_proxy import TunnelProxy

TIMEOUT = (1.0, 2.0)
TRIGGER = "/v1/events/trigger"


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory):
    return PrivateCA(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(params=["plain", "tls"])
def wire(request, private_ca):
    """Each test using it runs over plain HTTP and over TLS (a server certificate signed by a private
    CA, which the client is given as ``ca_bundle``). A test for one wire only: parametrize ``wire``
    with ``indirect=True``."""
    return private_ca if request.param == "tls" else None


@pytest.fixture
def serve(wire):
    """Start Origins (over the test's wire unless ``tls`` is given); all are closed after the test."""
    origins = []

    def start(answer, tls=None, **options):
        origin = Origin(answer, tls or (wire.server_context() if wire else None), **options)
        origins.append(origin)
        return origin

    yield start
    for origin in origins:
        origin.close()


@pytest.fixture
def client(wire):
    """A Session with a KeepAliveAdapter mounted as NovuClient mounts it (trusting the private CA on
    the TLS wire); closed after the test."""
    sessions = []

    def connect(base_url, **options):
        if wire is not None and base_url.startswith("https:"):
            options.setdefault("ca_bundle", wire.bundle)
        adapter = KeepAliveAdapter(base_url, **options)
        session = requests.Session()
        session.trust_env = False
        session.mount(base_url + "/", adapter)
        sessions.append(session)
        return session, adapter

    yield connect
    for session in sessions:
        session.close()


PLAIN_ONLY = pytest.mark.parametrize("wire", ["plain"], indirect=True)
TLS_ONLY = pytest.mark.parametrize("wire", ["tls"], indirect=True)


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
    """One write per request (http.client alone writes the body apart). A first recv() holding headers
    and body proves nothing on loopback: two quick writes often land together. So the server asks the
    kernel: TCP_INFO's tcpi_data_segs_in counts the data segments received. With TCP_NODELAY (the
    adapter sets it) a write of a few hundred bytes is one segment, also as one TLS record. The
    handshake brings segments of its own, so what counts is what the second request on the
    connection adds: one write gives 1, two writes 2."""
    origin = serve(created)
    session, _ = client(origin.url)
    body = b'{"pad":"' + b"x" * 400 + b'"}'

    responses = [session.post(origin.url + TRIGGER, data=body, timeout=TIMEOUT,
                              headers={"Content-Type": "application/json"}) for _ in range(2)]

    assert [response.status_code for response in responses] == [201, 201]
    first, second = origin.requests
    assert first.body == second.body == body
    assert origin.accepted == 1
    assert second.data_segments - first.data_segments == 1


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


@pytest.mark.parametrize("method, headers", [
    ("GET", {}),
    ("DELETE", {}),
    ("PATCH", {"Content-Type": "application/json"}),
    ("POST", {"Idempotency-Key": "sgmt-1"}),
])
def test_a_kept_connection_found_dead_on_reuse_is_replaced_and_the_request_sent_again(serve, client, method,
                                                                                     headers):
    """A connection idle less than idle_check_seconds is sent on without the liveness poll. If the
    server closed it meanwhile, nothing of an answer comes back: the request goes once more on a new
    connection, and the caller sees the answer, not the dead connection."""
    origin = serve(lambda received: reply(200, body=received.target.encode(), close=True))
    session, _ = client(origin.url, idle_check_seconds=60)

    assert session.request(method, origin.url + "/first", data=b"{}", headers=headers,
                           timeout=TIMEOUT).content == b"/first"
    assert origin.wait_until(lambda: origin.open_connections == 0)
    second = session.request(method, origin.url + "/second", data=b"{}", headers=headers, timeout=TIMEOUT)

    assert (second.status_code, second.content) == (200, b"/second")
    assert origin.accepted == 2
    assert [received.target for received in origin.requests] == ["/first", "/second"]
    assert [received.method for received in origin.requests] == [method, method]


def test_a_post_without_idempotency_key_is_not_sent_again_on_a_dead_connection(serve, client):
    """Without an Idempotency-Key a POST could act twice: the dead connection fails the call instead."""
    origin = serve(lambda received: reply(200, body=b"ok", close=True))
    session, _ = client(origin.url, idle_check_seconds=60)

    assert session.post(origin.url + "/first", data=b"{}", timeout=TIMEOUT).content == b"ok"
    assert origin.wait_until(lambda: origin.open_connections == 0)
    with pytest.raises(requests.ConnectionError) as raised:
        session.post(origin.url + "/second", data=b"{}", timeout=TIMEOUT)

    assert type(raised.value) is requests.ConnectionError
    assert origin.accepted == 1


def test_an_answer_cut_off_on_a_kept_connection_is_not_sent_again(serve, client):
    """Once any byte of an answer arrived, the server had the request: no resend, even with a key."""
    def cut_off_second(received):
        if received.target == "/second":
            return b"HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n{", True
        return reply(201, body=b"{}")

    origin = serve(cut_off_second)
    session, _ = client(origin.url, idle_check_seconds=60)
    headers = {"Idempotency-Key": "sgmt-1"}

    assert session.post(origin.url + "/first", data=b"{}", headers=headers, timeout=TIMEOUT).status_code == 201
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.post(origin.url + "/second", data=b"{}", headers=headers, timeout=TIMEOUT)

    assert [received.target for received in origin.requests] == ["/first", "/second"]


def test_a_kept_connection_that_times_out_is_not_sent_again(serve, client):
    """A silent server may be working on the request: a time limit reached is never a reason to resend."""
    origin = serve(lambda received: None if received.target == "/second" else reply(201, body=b"{}"))
    session, _ = client(origin.url, idle_check_seconds=60)
    headers = {"Idempotency-Key": "sgmt-1"}

    assert session.post(origin.url + "/first", data=b"{}", headers=headers, timeout=TIMEOUT).status_code == 201
    with pytest.raises(requests.ReadTimeout):
        session.post(origin.url + "/second", data=b"{}", headers=headers, timeout=(1.0, 0.3))

    assert [received.target for received in origin.requests] == ["/first", "/second"]
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


@PLAIN_ONLY
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


@PLAIN_ONLY
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel-kept time limits are used on Linux")
def test_plain_connection_is_blocking_with_the_time_limit_kept_by_the_kernel(serve, client):
    """Python's socket timeouts poll before every send and read; a plain connection is instead left
    blocking with SO_RCVTIMEO and SO_SNDTIMEO set to what was left of the call's limit."""
    origin = serve(created)
    session, adapter = client(origin.url)

    session.post(origin.url + TRIGGER, data=b"{}", timeout=(1.0, 2.5))

    sock = adapter._idle[0].sock
    assert sock.gettimeout() is None
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        seconds, micro = struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, option, 16))
        assert 2.4 < seconds + micro / 1e6 <= 2.5


@PLAIN_ONLY
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


@PLAIN_ONLY
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


@PLAIN_ONLY
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


@pytest.fixture
def tunnel_proxy():
    proxies = []

    def start(**options):
        proxies.append(TunnelProxy(**options))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def proxy_environment(monkeypatch):
    """No proxy or CA bundle variable from the machine running the tests; the test sets its own."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@PLAIN_ONLY
def test_novu_client_sends_a_proxys_credentials_with_each_call(serve, unused_port, proxy_environment):
    """user:password in HTTP_PROXY become Proxy-Authorization (Basic, the password unquoted), as requests sends it."""
    proxy = serve(lambda received: reply(202, "Accepted", b'{"via":"proxy"}'))
    proxy_environment.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://egress:p%40ss@"))
    novu = NovuClient(f"http://127.0.0.1:{unused_port}", SecretSource("nk-1"))

    answers = [novu.call("GET", "/v2/workflows", None, time.monotonic() + 5) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [202, 202]
    assert [received.target for received in proxy.requests] == [f"http://127.0.0.1:{unused_port}/v2/workflows"] * 2
    assert proxy.requests[0].header("Proxy-Authorization") == "Basic ZWdyZXNzOnBAc3M="
    assert proxy.accepted == 1
    novu.session.close()


@TLS_ONLY
def test_novu_client_reaches_an_https_novu_through_a_connect_tunnel(serve, tunnel_proxy, private_ca,
                                                                    proxy_environment):
    """HTTPS_PROXY (an http:// proxy): one CONNECT, then TLS to Novu inside it, Novu's certificate
    checked against the bundle the environment names; the tunnel is kept for the next call."""
    origin = serve(created)
    proxy = tunnel_proxy()
    proxy_environment.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://egress:secret@"))
    proxy_environment.setenv("REQUESTS_CA_BUNDLE", private_ca.bundle)
    novu = NovuClient(origin.url, SecretSource("nk-1"))

    answers = [novu.call("POST", TRIGGER, {"name": "w"}, time.monotonic() + 5, idempotent=True) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [201, 201]
    authority = f"127.0.0.1:{origin.port}"
    assert proxy.connects == [(f"CONNECT {authority} HTTP/1.1",
                               {"host": authority, "proxy-authorization": "Basic ZWdyZXNzOnNlY3JldA=="})]
    assert [(received.method, received.target) for received in origin.requests] == [("POST", TRIGGER)] * 2
    assert origin.requests[0].header("Authorization") == "ApiKey nk-1"
    assert origin.accepted == 1
    novu.session.close()


@TLS_ONLY
def test_a_proxy_refusing_the_tunnel_fails_the_call_as_a_connection_error(serve, tunnel_proxy, private_ca):
    origin = serve(created)
    proxy = tunnel_proxy(refuse_with="407 Proxy Authentication Required")
    adapter = KeepAliveAdapter(origin.url, ca_bundle=private_ca.bundle, proxy=proxy.url)

    with pytest.raises(requests.exceptions.ProxyError) as raised:
        adapter.exchange("POST", origin.url + TRIGGER, {}, b"{}", TIMEOUT)

    assert "407 Proxy Authentication Required" in str(raised.value)
    assert isinstance(raised.value, requests.ConnectionError)
    assert origin.requests == []


@TLS_ONLY
def test_a_novu_dripping_behind_a_proxy_ends_the_call_at_its_limit(serve, tunnel_proxy, private_ca):
    origin = serve(lambda received: (drip(b"HTTP/1.1 201 Created\r\n", b"X", 0.1, 40), False))
    proxy = tunnel_proxy()
    adapter = KeepAliveAdapter(origin.url, ca_bundle=private_ca.bundle, proxy=proxy.url)

    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        adapter.exchange("POST", origin.url + TRIGGER, {}, b"{}", (1.0, 0.6))

    assert 0.55 <= time.monotonic() - started < 0.8
    adapter.close()


def test_streamed_call_is_served_by_requests_own_adapter(serve, client):
    """stream=True needs a readable raw body, which only requests' HTTPAdapter provides."""
    origin = serve(lambda received: reply(200, body=b"streamed body"))
    session, _ = client(origin.url)

    response = session.get(origin.url + "/stream", timeout=TIMEOUT, stream=True)

    assert b"".join(response.iter_content(4)) == b"streamed body"
    response.close()


def test_a_connection_checked_before_reuse_is_kept_while_alive(serve, client):
    """The liveness poll (idle_check_seconds=0: before every reuse) keeps a live connection; over TLS
    what the server may send after the handshake (session tickets) is not taken for a close."""
    origin = serve(created)
    session, _ = client(origin.url, idle_check_seconds=0)

    answers = [session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [201, 201, 201]
    assert answers[2].json() == {"data": {"acknowledged": True, "path": TRIGGER}}
    assert origin.accepted == 1


# -- whose certificates are trusted: requests' conventions, then OpenSSL's ------------------------------


@pytest.fixture
def ca_environment(monkeypatch):
    """No CA bundle variable set, as on a fresh instance; the test sets the ones it needs."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@TLS_ONLY
def test_without_a_bundle_variable_a_private_ca_is_not_trusted(serve, ca_environment):
    """certifi's bundle, requests' default: a certificate of a private CA is refused before anything is sent."""
    origin = serve(created)
    adapter = KeepAliveAdapter(origin.url)

    with pytest.raises(requests.exceptions.SSLError) as raised:
        adapter.exchange("POST", origin.url + TRIGGER, {}, b"{}", TIMEOUT)

    assert type(raised.value) is requests.exceptions.SSLError
    assert origin.requests == []


@TLS_ONLY
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_a_bundle_named_in_the_environment_is_trusted(serve, ca_environment, private_ca, variable):
    origin = serve(created)
    ca_environment.setenv(variable, private_ca.bundle)
    adapter = KeepAliveAdapter(origin.url)

    answer = adapter.exchange("POST", origin.url + TRIGGER, {}, b"{}", TIMEOUT)

    assert answer.status_code == 201
    assert [received.target for received in origin.requests] == [TRIGGER]
    adapter.close()


@TLS_ONLY
@pytest.mark.parametrize("trusted_in, other_bundle_in, delivered", [
    ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", True),
    ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", True),
    ("CURL_CA_BUNDLE", "SSL_CERT_FILE", True),
    ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", False),
    ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", False),
    ("SSL_CERT_FILE", "CURL_CA_BUNDLE", False),
])
def test_bundle_variables_take_precedence_as_requests_reads_them(serve, ca_environment, private_ca, trusted_in,
                                                                 other_bundle_in, delivered):
    """REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE (requests' order), then SSL_CERT_FILE: the first one
    set names the whole trust store; the others are not added to it."""
    origin = serve(created)
    ca_environment.setenv(trusted_in, private_ca.bundle)
    ca_environment.setenv(other_bundle_in, requests.certs.where())
    adapter = KeepAliveAdapter(origin.url)

    if delivered:
        assert adapter.exchange("POST", origin.url + TRIGGER, {}, b"{}", TIMEOUT).status_code == 201
    else:
        with pytest.raises(requests.exceptions.SSLError):
            adapter.exchange("POST", origin.url + TRIGGER, {}, b"{}", TIMEOUT)
    adapter.close()


@TLS_ONLY
@pytest.mark.skipif(not os.path.exists("/usr/bin/openssl"), reason="needs openssl rehash")
def test_a_bundle_directory_of_hashed_certificates_is_trusted(serve, ca_environment, private_ca, tmp_path):
    """requests accepts a directory (``openssl rehash``'s layout) in REQUESTS_CA_BUNDLE; so does the adapter."""
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "private-ca.pem").write_bytes(open(private_ca.bundle, "rb").read())
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True)
    origin = serve(created)
    ca_environment.setenv("REQUESTS_CA_BUNDLE", str(directory))
    adapter = KeepAliveAdapter(origin.url)

    assert adapter.exchange("POST", origin.url + TRIGGER, {}, b"{}", TIMEOUT).status_code == 201
    adapter.close()


@TLS_ONLY
def test_requests_own_adapter_trusts_the_same_bundle(serve, client, private_ca):
    """A call the adapter hands to requests' HTTPAdapter (here a streamed one) checks the certificate
    against the same bundle, not certifi's."""
    origin = serve(lambda received: reply(200, body=b"streamed body"))
    session, _ = client(origin.url, ca_bundle=private_ca.bundle)

    response = session.get(origin.url + "/stream", timeout=TIMEOUT, stream=True)

    assert b"".join(response.iter_content(4)) == b"streamed body"
    response.close()


@TLS_ONLY
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_is_served_by_requests_own_adapter(serve, client):
    """verify=False is a TLS setting the adapter does not handle itself: requests' HTTPAdapter honours it."""
    origin = serve(created)
    session, _ = client(origin.url, ca_bundle=requests.certs.where())

    response = session.post(origin.url + TRIGGER, data=b"{}", timeout=TIMEOUT, verify=False)

    assert response.status_code == 201


# -- every call ends within its limit, whatever the network does -----------------------------------------


@pytest.mark.parametrize("head, byte", [
    (b"HTTP/1.1 201 Created\r\n", b"X"),
    (b"HTTP/1.1 201 Created\r\nContent-Length: 1000\r\n\r\n", b"x"),
    (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n"),
], ids=["headers", "body", "chunks"])
def test_an_answer_dripping_in_ends_the_call_at_its_limit(serve, client, head, byte):
    """A server that sends a little every 0.1 s never lets one read wait its full limit; the call
    still ends at its limit (a timeout, retryable for NovuClient), and the connection is dropped."""
    origin = serve(lambda received: (drip(head, byte, 0.1, 40), False))
    session, _ = client(origin.url)

    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        session.post(origin.url + TRIGGER, data=b"{}", timeout=(1.0, 0.6))
    elapsed = time.monotonic() - started

    assert 0.55 <= elapsed < 0.8
    assert origin.wait_until(lambda: origin.open_connections == 0, timeout=2)


@TLS_ONLY
def test_connecting_time_is_taken_off_the_calls_limit(serve, client):
    """A slow TLS handshake (0.5 s) then a slow answer (0.5 s): each within its own limit, but
    together past the call's 0.8 s, which is where the call ends."""
    def slow(received):
        time.sleep(0.5)
        return created(received)

    origin = serve(slow, handshake_delay=0.5)
    session, _ = client(origin.url)

    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        session.post(origin.url + TRIGGER, data=b"{}", timeout=(1.0, 0.8))

    assert time.monotonic() - started < 0.95


@TLS_ONLY
def test_a_stalled_handshake_ends_at_the_connect_limit(serve, client):
    origin = serve(created, handshake_delay=2.0)
    session, _ = client(origin.url)

    started = time.monotonic()
    with pytest.raises(requests.ConnectTimeout):
        session.post(origin.url + TRIGGER, data=b"{}", timeout=(0.3, 2.0))

    assert time.monotonic() - started < 0.5


# -- answers are framed strictly, and never larger than MAX_RESPONSE_BYTES -----------------------------


@pytest.mark.parametrize("size_line", [b"-1", b"0x5", b"+5", b"0_5", b" 5", b"5 ", b"\t5", b"5\x00", b"\xd9\xa5",
                                       b"", b"11111111111111111"])
def test_a_chunk_size_other_than_hex_digits_fails_the_call(serve, client, size_line):
    """RFC 9112: chunk-size is hex digits; int(x, 16) would also take a sign, 0x, _ and whitespace."""
    origin = serve(lambda received: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     + size_line + b"\r\nhello\r\n0\r\n\r\n", False))
    session, _ = client(origin.url)

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.get(origin.url + "/v2/workflows", timeout=(1.0, 0.5))

    assert origin.wait_until(lambda: origin.open_connections == 0)


@pytest.mark.parametrize("size_line", [b"5", b"05", b"5;name=value", b"5 ; name", b"5;"])
def test_a_chunk_size_with_extensions_is_read(serve, client, size_line):
    origin = serve(lambda received: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     + size_line + b"\r\nhello\r\n0\r\n\r\n", False))
    session, _ = client(origin.url)

    assert session.get(origin.url + "/v2/workflows", timeout=TIMEOUT).content == b"hello"


def test_chunk_data_not_followed_by_a_line_end_fails_the_call(serve, client):
    """The 5 bytes of a "5" chunk, then something other than CRLF: the framing is wrong, not skipped."""
    origin = serve(lambda received: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"5\r\nhelloXX\r\n0\r\n\r\n", False))
    session, _ = client(origin.url)

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.get(origin.url + "/v2/workflows", timeout=(1.0, 0.5))


def _too_large(framing: str) -> bytes:
    size = MAX_RESPONSE_BYTES + 1
    if framing == "content-length":
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    if framing == "claimed-length":  # a claim only: the body never comes
        return b"HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n"
    if framing == "chunked":
        chunk = b"x" * 65536
        chunks = b"%x\r\n%s\r\n" % (len(chunk), chunk) * (size // len(chunk) + 1)
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    if framing == "until-close":
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * size
    body = zlib.compress(b"\0" * (64 * MAX_RESPONSE_BYTES))  # 256 MiB of zeros in about 260 KB
    return b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize("framing", ["content-length", "claimed-length", "chunked", "until-close", "deflate-bomb"])
def test_an_answer_larger_than_the_cap_fails_the_call_unread(serve, client, framing):
    """No answer, however framed or compressed, is held in memory beyond MAX_RESPONSE_BYTES: the call
    fails (retryable for NovuClient) and the connection is dropped."""
    answer = _too_large(framing)
    origin = serve(lambda received: (answer, framing == "until-close"))
    session, _ = client(origin.url)

    started = time.monotonic()
    with pytest.raises(ResponseTooLarge):
        session.get(origin.url + "/v2/workflows", timeout=(1.0, 2.0))

    assert time.monotonic() - started < 1.5
    assert origin.wait_until(lambda: origin.open_connections == 0, timeout=2)


def test_an_answer_of_exactly_the_cap_is_read(serve, client):
    body = b"x" * MAX_RESPONSE_BYTES
    origin = serve(lambda received: reply(200, body=body))
    session, _ = client(origin.url)

    assert session.get(origin.url + "/v2/workflows", timeout=TIMEOUT).content == body


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
