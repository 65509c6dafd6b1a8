"""Fifty requests at once against the served function while the Novu key rotates in Secret Manager:
no race in the secret cache, the pooled session or the ledger; every request answered correctly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import track
from tests.novu_standin import Scripted, error_body

REQUESTS = 50
SECRET = "projects/p/secrets/novu-key"


@pytest.mark.parametrize("ledger", ["memory", "redis"])
def test_fifty_concurrent_requests_while_the_key_rotates(serve_function, novu, secret_manager, ledger, request):
    secret_manager.set(SECRET, "key-1")
    settings = {"NOVU_API_KEY": SECRET, "SECRET_MANAGER_EMULATOR_HOST": secret_manager.host}
    if ledger == "redis":
        settings["REDIS_URL"] = request.getfixturevalue("redis_url")
    function = serve_function(**settings)
    current = {"key": "key-1"}
    lock = threading.Lock()

    def accept_current_key(call):
        with lock:
            if call.headers.get("Authorization") != f"ApiKey {current['key']}":
                return Scripted(401, error_body(401, "API Key not found", "Unauthorized"))
        return None

    novu.respond_with(accept_current_key)
    half_sent = threading.Barrier(REQUESTS // 2 + 1)

    def send(index):
        if index < REQUESTS // 2:
            half_sent.wait()
        response = function.post([track(index), track(index + 1000)])
        return response.status_code if response.status_code == 200 else response.text

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        futures = [pool.submit(send, index) for index in range(REQUESTS)]
        half_sent.wait()
        secret_manager.set(SECRET, "key-2")
        with lock:
            current["key"] = "key-2"
        statuses = [future.result() for future in futures]

    assert statuses == [200] * REQUESTS, statuses
    assert len(novu.accepted) == 2 * REQUESTS and set(novu.accepted.values()) == {1}
    used = {call.headers["Authorization"] for call in novu.calls() if call.path == "/v1/events/trigger"}
    assert used <= {"ApiKey key-1", "ApiKey key-2"}
