"""The whole system in a real browser: ``scripts/inbox-demo`` started as a user starts it, Segment
events posted to the function it prints, and Novu's real Inbox (``@novu/js``, bundled) in headless
Chromium (Debian's ``chromium``, driven by Playwright) on the page it prints.

The screenshot of the open Inbox is saved as ``tests/artifacts/inbox.png``, and the demo's own output
as ``tests/artifacts/inbox-demo.log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The first start installs the page's npm packages and builds its bundle.
DEMO_START_SECONDS = 300
LIVE_MS = 2000  # the promise: a posted event is in the open page within 2 s
UI_MS = 15000
TRACK_EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "track.json").read_text())
ORDER_SUBJECT = "Order completed: 54.82 USD"
ORDER_BODY = ("Thanks for your order 82f250a3-32eb-40be-95fc-77e685ed8448. "
              "The receipt is on its way to joe.customer@example.com.")

def _read_lines(stream, lines: list[str], count: int, done: threading.Event) -> None:
    for raw in iter(stream.readline, b""):
        lines.append(raw.decode().rstrip("\n"))
        if len(lines) == count:
            break
    done.set()


@pytest.fixture(scope="module")
def demo():
    """``scripts/inbox-demo`` running: its two printed lines as {"function": url, "inbox": url}."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "inbox-demo.log").open("wb")
    environment = {name: value for name, value in os.environ.items() if name not in ("FUNCTION_PORT", "INBOX_PORT")}
    process = subprocess.Popen(["bash", str(PROJECT_ROOT / "scripts" / "inbox-demo")], cwd=PROJECT_ROOT,
                               env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                               start_new_session=True)
    lines: list[str] = []
    done = threading.Event()
    threading.Thread(target=_read_lines, args=(process.stdout, lines, 2, done), daemon=True).start()
    try:
        done.wait(DEMO_START_SECONDS)
        assert len(lines) == 2, f"scripts/inbox-demo printed {lines!r}; see tests/artifacts/inbox-demo.log"
        assert lines[0].startswith("function: http://127.0.0.1:"), lines
        assert lines[1].startswith("inbox: http://127.0.0.1:"), lines
        yield {name: url for name, url in (line.split(": ", 1) for line in lines)}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page threw: {errors}"


def post(demo, event: dict) -> requests.Response:
    return requests.post(demo["function"], json=event, timeout=15)


def order(user: str, number: int, total: float = 10.0) -> dict:
    return {"type": "track", "event": "Order Completed", "userId": user, "messageId": f"{user}-order-{number}",
            "properties": {"order_id": f"order-{number}", "total": total, "currency": "EUR",
                           "email": f"{user}@example.com"}}


def delivered(response: requests.Response, message_id) -> None:
    """The exact answer Segment gets for one event Novu (the sandbox) took."""
    assert response.status_code == 200, response.text
    assert response.json() == {"events": [{"index": 0, "messageId": message_id, "type": "track",
                                           "outcome": "delivered", "reason": "triggered",
                                           "workflows": ["order-completed"], "novuStatus": 201}],
                               "message": "1 delivered"}


def open_inbox(page, demo, subscriber_id: str | None = None):
    url = demo["inbox"] + (f"?subscriberId={subscriber_id}" if subscriber_id else "")
    with page.expect_response(lambda answer: answer.url.endswith("/v1/inbox/session")) as session:
        page.goto(url)
    return session.value


def unread_badge(page):
    return page.get_by_test_id("unread-count")


def test_a_posted_track_event_shows_in_the_inbox_of_its_user(demo, page):
    from playwright.sync_api import expect

    delivered(post(demo, TRACK_EXAMPLE), None)
    session = open_inbox(page, demo)  # no ?subscriberId=: the inbox of examples/track.json's userId
    assert session.status == 201
    expect(page.locator("#who")).to_have_text(f"Signed in as {TRACK_EXAMPLE['userId']}")
    expect(unread_badge(page)).to_have_text("1", timeout=UI_MS)
    page.locator(".nv-popoverTrigger").click()
    notification = page.locator(".nv-notification")
    expect(notification).to_have_count(1, timeout=UI_MS)
    expect(notification.locator(".nv-notificationSubject")).to_have_text(ORDER_SUBJECT)
    expect(notification.locator(".nv-notificationBody")).to_have_text(ORDER_BODY)
    expect(notification.locator(".nv-notificationPrimaryAction__button")).to_have_text("View order")
    page.wait_for_timeout(300)  # the popover's opening animation
    page.screenshot(path=str(ARTIFACTS / "inbox.png"))
    assert (ARTIFACTS / "inbox.png").stat().st_size > 10_000


def test_marking_a_notification_read_lowers_the_count(demo, page):
    from playwright.sync_api import expect

    user = f"reader-{uuid.uuid4().hex[:8]}"
    for number in (1, 2):
        delivered(post(demo, order(user, number)), f"{user}-order-{number}")
    open_inbox(page, demo, user)
    expect(unread_badge(page)).to_have_text("2", timeout=UI_MS)
    page.locator(".nv-popoverTrigger").click()
    newest = page.locator(".nv-notification").first
    expect(newest.locator(".nv-notificationSubject")).to_have_text("Order completed: 10.0 EUR", timeout=UI_MS)
    newest.hover()
    newest.locator(".nv-notificationRead__button").click()
    expect(unread_badge(page)).to_have_text("1", timeout=UI_MS)
    page.reload()  # the read state is Novu's (the sandbox's), not the page's
    expect(unread_badge(page)).to_have_text("1", timeout=UI_MS)


def test_a_second_event_arrives_live_without_a_reload(demo, page):
    from playwright.sync_api import expect

    user = f"live-{uuid.uuid4().hex[:8]}"
    delivered(post(demo, order(user, 1, total=5)), f"{user}-order-1")
    with page.expect_websocket(lambda socket: "/socket?token=" in socket.url, timeout=UI_MS):
        open_inbox(page, demo, user)
    expect(unread_badge(page)).to_have_text("1", timeout=UI_MS)
    page.evaluate("window.loadedOnce = true")
    delivered(post(demo, order(user, 2, total=7.5)), f"{user}-order-2")
    expect(unread_badge(page)).to_have_text("2", timeout=LIVE_MS)
    assert page.evaluate("window.loadedOnce") is True  # the same page: nothing reloaded it
    page.locator(".nv-popoverTrigger").click()
    expect(page.locator(".nv-notificationSubject")).to_have_text(
        ["Order completed: 7.5 EUR", "Order completed: 5 EUR"], timeout=UI_MS)
    delivered(post(demo, order(user, 3, total=1)), f"{user}-order-3")
    # With the Inbox open, Novu's UI announces a new notification instead of moving the list under the reader.
    expect(page.get_by_text("1 new notification")).to_be_visible(timeout=LIVE_MS)
    expect(unread_badge(page)).to_have_text("3", timeout=LIVE_MS)


def test_a_bad_subscriber_hash_is_refused(demo, page):
    from playwright.sync_api import expect

    user = f"intruder-target-{uuid.uuid4().hex[:8]}"
    delivered(post(demo, order(user, 1)), f"{user}-order-1")

    def forge(route):
        answer = route.fetch()
        config = answer.json()
        assert len(config["subscriberHash"]) == 64  # the page server did hand out a hash
        route.fulfill(response=answer, json={**config, "subscriberHash": "0" * 64})

    page.route("**/inbox-config*", forge)
    session = open_inbox(page, demo, user)
    assert session.status == 400
    assert session.json()["message"] == "Please provide a valid HMAC hash"
    # @novu/js words the error itself: "... error. Status: 400, Message: Please provide a valid HMAC hash".
    expect(page.locator("#status")).to_contain_text("Novu refused the Inbox session: ", timeout=UI_MS)
    expect(page.locator("#status")).to_contain_text("Status: 400, Message: Please provide a valid HMAC hash")
    page.wait_for_timeout(500)
    expect(unread_badge(page)).to_have_count(0)  # the subscriber's notification was not shown
