"""Serves the Inbox page (examples/inbox/) and plays the part of your app's backend for it.

``GET /`` is the page, ``/dist/novu-inbox.js`` its bundle (``npm run build``), and
``GET /inbox-config?subscriberId=ID`` what the page needs to mount Novu's Inbox: the public
``applicationIdentifier``, the API and socket URLs, and the ``subscriberHash`` computed here with
the secret key from ``NOVU_SECRET_KEY``, which never reaches the browser.

This demo hands a hash to anyone who asks for any subscriber: a real backend computes it only for
the user who is signed in, or HMAC protects nothing.

    NOVU_SECRET_KEY=... python examples/inbox/server.py --application-identifier APP_ID \\
        [--api-url https://eu.api.novu.co --socket-url wss://eu.socket.novu.co] [--port 8000]

Prints exactly one line when it is ready: ``inbox: http://HOST:PORT/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

PAGE_DIRECTORY = Path(__file__).resolve().parent
PROJECT_ROOT = PAGE_DIRECTORY.parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from segment_novu.inbox import subscriber_hash  # noqa: E402 (the project root is put on the path first)

BUNDLE = PAGE_DIRECTORY / "dist" / "novu-inbox.js"
TRACK_EXAMPLE = PROJECT_ROOT / "examples" / "track.json"
SUBSCRIBER_ID_LIMIT = 256  # generous: Novu's own limit on subscriber ids is not documented
SOCKET_TYPES = ("cloud", "self-hosted")
CONFIG_KEY = web.AppKey("config", dict)
SECRET_KEY = web.AppKey("secret_key", str)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(PAGE_DIRECTORY / "index.html", headers={"Cache-Control": "no-store"})


async def bundle(request: web.Request) -> web.StreamResponse:
    if not BUNDLE.exists():
        return _problem(404, "dist/novu-inbox.js is not built: run `npm ci && npm run build` in examples/inbox")
    return web.FileResponse(BUNDLE)


async def inbox_config(request: web.Request) -> web.Response:
    config = request.app[CONFIG_KEY]
    subscriber_id = request.query.get("subscriberId", config["defaultSubscriberId"] or "")
    if not subscriber_id.strip():
        return _problem(400, "subscriberId is missing: open the page with ?subscriberId=<id>")
    if len(subscriber_id) > SUBSCRIBER_ID_LIMIT:
        return _problem(400, f"subscriberId is longer than {SUBSCRIBER_ID_LIMIT} characters")
    answer = {key: value for key, value in config.items() if key != "defaultSubscriberId" and value}
    answer["subscriberId"] = subscriber_id
    secret_key = request.app[SECRET_KEY]
    if secret_key:
        answer["subscriberHash"] = subscriber_hash(secret_key, subscriber_id)
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


def build_app(config: dict, secret_key: str) -> web.Application:
    app = web.Application()
    app[CONFIG_KEY] = config
    app[SECRET_KEY] = secret_key
    app.router.add_get("/", page)
    app.router.add_get("/index.html", page)
    app.router.add_get("/dist/novu-inbox.js", bundle)
    app.router.add_get("/inbox-config", inbox_config)
    return app


def _default_subscriber() -> str | None:
    """``examples/track.json``'s ``userId``: the page shows the inbox its event notifies."""
    try:
        return str(json.loads(TRACK_EXAMPLE.read_text(encoding="utf-8"))["userId"])
    except (OSError, ValueError, KeyError):
        return None


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="python examples/inbox/server.py",
                                          description="Serve the Inbox page and its subscriber hash.")
    main_parser.add_argument("--host", default="127.0.0.1")
    main_parser.add_argument("--port", type=int, default=0, help="0 (the default): a free port")
    main_parser.add_argument("--application-identifier", required=True,
                             help="the Novu environment's applicationIdentifier (public)")
    main_parser.add_argument("--api-url", help="Novu's API: https://api.novu.co (default), https://eu.api.novu.co, "
                                               "or a self-hosted URL")
    main_parser.add_argument("--socket-url", help="Novu's socket: wss://socket.novu.co (default), "
                                                  "wss://eu.socket.novu.co, or a self-hosted URL")
    main_parser.add_argument("--socket-type", choices=SOCKET_TYPES,
                             help="cloud: a plain WebSocket (Novu Cloud); self-hosted: socket.io")
    main_parser.add_argument("--default-subscriber-id", default=_default_subscriber(),
                             help="the inbox shown without ?subscriberId= (default: examples/track.json's userId)")
    return main_parser


async def run(arguments, secret_key: str) -> None:
    config = {"applicationIdentifier": arguments.application_identifier, "apiUrl": arguments.api_url,
              "socketUrl": arguments.socket_url, "socketType": arguments.socket_type,
              "defaultSubscriberId": arguments.default_subscriber_id}
    runner = web.AppRunner(build_app(config, secret_key), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, arguments.host, arguments.port)
    await site.start()
    port = runner.addresses[0][1]
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopped.set)
    print(f"inbox: http://{arguments.host}:{port}/", flush=True)
    await stopped.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    secret_key = os.environ.get("NOVU_SECRET_KEY", "").strip()
    if not secret_key:
        print("NOVU_SECRET_KEY is not set: the page gets no subscriberHash (fine only while HMAC is off)",
              file=sys.stderr)
    asyncio.run(run(arguments, secret_key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
