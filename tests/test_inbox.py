"""``segment_novu.inbox.subscriber_hash``, the ``subscriber-hash`` command and the Inbox page's server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from segment_novu.inbox import subscriber_hash

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Novu's published example (docs.novu.co, Inbox security): the Node.js helper, run here as written.
NOVU_NODE_EXAMPLE = """
const { createHmac } = require("crypto");
function getSubscriberHash(subscriberId) {
  return createHmac("sha256", process.env.NOVU_SECRET_KEY).update(subscriberId).digest("hex");
}
process.stdout.write(getSubscriberHash("user-123"));
"""
EXAMPLE_KEY = "sk_test_0123456789abcdef"
# What that example printed with this key (Node.js 20): the test below recomputes it where node exists.
EXAMPLE_HASH = "a01087b0949f168298b7e261f8dc1e3e4dd349bd97c8f9397f61c3e147c0714b"


def test_the_hash_is_hmac_sha256_in_lowercase_hex():
    # RFC 4231, test case 2: HMAC-SHA256 with key "Jefe".
    assert subscriber_hash("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (the page's bundle needs it too)")
def test_the_hash_equals_novus_published_node_example():
    result = subprocess.run(["node", "-e", NOVU_NODE_EXAMPLE],
                            env={"NOVU_SECRET_KEY": EXAMPLE_KEY, "PATH": os.environ["PATH"]},
                            capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout == EXAMPLE_HASH


def test_the_hash_equals_what_novus_example_printed():
    assert subscriber_hash(EXAMPLE_KEY, "user-123") == EXAMPLE_HASH


def test_an_empty_key_is_refused():
    with pytest.raises(ValueError):
        subscriber_hash("", "user-123")


def run(*arguments: str, env: dict) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run([sys.executable, "-m", "segment_novu", *arguments], cwd=PROJECT_ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_the_command_prints_the_hash_keyed_with_novu_secret_key():
    result = run("subscriber-hash", "--subscriber-id", "customer-12345", env={"NOVU_SECRET_KEY": "k-1"})
    assert (result.returncode, result.stdout, result.stderr) == (0, subscriber_hash("k-1", "customer-12345") + "\n", "")


def test_the_command_falls_back_to_the_functions_novu_api_key():
    result = run("subscriber-hash", "--subscriber-id", "u1", env={"NOVU_API_KEY": "k-2"})
    assert (result.returncode, result.stdout) == (0, subscriber_hash("k-2", "u1") + "\n")


def test_the_command_reads_a_secret_manager_key(secret_manager):
    secret_manager.set("projects/p/secrets/novu-api-key", "k-3")
    result = run("subscriber-hash", "--subscriber-id", "u1", env={
        "NOVU_API_KEY": "projects/p/secrets/novu-api-key", "SECRET_MANAGER_EMULATOR_HOST": secret_manager.host})
    assert (result.returncode, result.stdout) == (0, subscriber_hash("k-3", "u1") + "\n"), result.stderr


def test_the_command_without_a_key_says_what_to_set():
    result = run("subscriber-hash", "--subscriber-id", "u1", env={})
    assert result.returncode == 2 and result.stdout == ""
    assert "NOVU_SECRET_KEY" in result.stderr


def test_the_command_needs_a_subscriber_id():
    result = run("subscriber-hash", env={"NOVU_SECRET_KEY": "k"})
    assert result.returncode == 2 and "--subscriber-id" in result.stderr


@pytest.fixture
def page_server():
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "examples" / "inbox" / "server.py"), "--application-identifier", "app-1",
         "--api-url", "https://eu.api.novu.co", "--socket-url", "wss://eu.socket.novu.co"],
        cwd=PROJECT_ROOT, env={**os.environ, "NOVU_SECRET_KEY": "page-key"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().rstrip("\n")
        assert line.startswith("inbox: http://127.0.0.1:") and line.endswith("/"), line
        yield line.split(": ", 1)[1]
    finally:
        process.terminate()
        process.wait(10)


def test_the_page_server_hands_the_page_its_config_and_hash_never_the_key(page_server):
    answer = requests.get(page_server + "inbox-config", params={"subscriberId": "u 1/é"}, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"applicationIdentifier": "app-1", "apiUrl": "https://eu.api.novu.co",
                             "socketUrl": "wss://eu.socket.novu.co", "subscriberId": "u 1/é",
                             "subscriberHash": subscriber_hash("page-key", "u 1/é")}
    default = requests.get(page_server + "inbox-config", timeout=5).json()
    assert default["subscriberId"] == "customer-12345"  # examples/track.json's userId
    page = requests.get(page_server, timeout=5)
    assert page.status_code == 200 and "page-key" not in page.text and 'id="inbox"' in page.text


@pytest.mark.parametrize("subscriber_id", ["", "   ", "x" * 257])
def test_the_page_server_refuses_a_bad_subscriber_id_with_a_message(page_server, subscriber_id):
    answer = requests.get(page_server + "inbox-config", params={"subscriberId": subscriber_id}, timeout=5)
    assert answer.status_code == 400 and answer.json()["message"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git reads .gcloudignore's gitignore syntax here")
def test_the_deployed_function_carries_neither_the_sandbox_nor_the_page(tmp_path):
    """.gcloudignore (gitignore syntax) read by git in an empty repository, so only its own rules count."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)

    def ignored(path: str) -> bool:
        result = subprocess.run(["git", "-C", str(tmp_path), "-c",
                                 f"core.excludesFile={PROJECT_ROOT / '.gcloudignore'}",
                                 "check-ignore", "--no-index", "-q", path])
        return result.returncode == 0

    for path in ("novu_sandbox/state.py", "requirements-demo.txt", "examples/inbox/dist/novu-inbox.js",
                 "examples/inbox/node_modules/@novu/js/package.json", "node_modules/x/index.js",
                 "docs/inbox.png", "tests/artifacts/inbox.png", "scripts/inbox_demo.py"):
        assert ignored(path), path
    for path in ("main.py", "requirements.txt", "segment_novu/inbox.py", "mapping.json"):
        assert not ignored(path), path
