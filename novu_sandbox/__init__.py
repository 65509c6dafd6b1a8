"""A local stand-in for the parts of Novu that the bridge and Novu's Inbox touch. It is NOT Novu.

It exists so that the whole system can be seen working on one machine, with no Novu account:
``scripts/inbox-demo`` points the function at it, and Novu's real Inbox (``@novu/js``) talks to it
from a browser. Everything is kept in memory and lost when it stops.

What it plays, each answer in the shape Novu gives it (success bodies wrapped in ``{"data": ...}``):

- REST, with ``Authorization: ApiKey <secret key>``: ``/v1/events/trigger`` and ``/bulk``
  (``transactionId`` dedup; an unknown workflow answers ``422`` like Novu), the cancel
  ``DELETE /v1/events/trigger/{id}`` (nothing is ever pending: ``false``), ``/v2/subscribers``
  (upsert, ``PATCH``, ``DELETE``), ``/v1/subscribers/{id}/credentials``, ``/v2/topics`` and their
  subscriptions, ``GET /v2/workflows``.
- Each trigger of a workflow becomes one in-app notification per recipient (a topic fans out to its
  subscribers), with the content of the workflow's in-app step from the workflows file, templated
  with ``{{payload.x}}`` and ``{{subscriber.firstName}}``.
- The Inbox API under ``/v1/inbox/`` (session, list, count, read/unread, archive, seen, actions),
  with CORS, and the realtime socket the Inbox's ``cloud`` socket type speaks (a plain WebSocket at
  ``/socket``). With ``hmac=True`` the session needs ``subscriberHash`` = HMAC-SHA256 of the
  subscriber id under the secret key, as Novu requires when HMAC is on.

Not modelled: other channels, digests, delays, preferences (the list is empty, so the Inbox shows
none), the Inbox's ``context``, rate limits.

``python -m novu_sandbox`` serves it from the command line; ``start(...)`` runs it in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from novu_sandbox.server import build_app
from novu_sandbox.state import Sandbox
from novu_sandbox.workflows import load_workflows

DEFAULT_SECRET_KEY = "sandbox-secret-key"
DEFAULT_APPLICATION_IDENTIFIER = "sandbox-app"


@dataclass
class RunningSandbox:
    """A sandbox served on loopback from a background thread; ``state`` is its memory."""

    url: str
    state: Sandbox
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _runner: object

    @property
    def socket_url(self) -> str:
        return "ws" + self.url[len("http"):] + "/socket"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def serve(state: Sandbox, host: str, port: int):
    """Serve ``state`` on host:port; returns the aiohttp runner and the port really bound."""
    from aiohttp import web

    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, bound


def start(*, workflows: str | Path | list | None = None, secret_key: str = DEFAULT_SECRET_KEY,
          application_identifier: str = DEFAULT_APPLICATION_IDENTIFIER, hmac: bool = False,
          host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Start a sandbox in a background thread. ``workflows``: a workflows file, or its list already read."""
    definitions = load_workflows(workflows) if isinstance(workflows, (str, Path)) else list(workflows or [])
    state = Sandbox(definitions, secret_key=secret_key, application_identifier=application_identifier,
                    hmac=hmac)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="novu-sandbox", daemon=True)
    thread.start()
    runner, bound = asyncio.run_coroutine_threadsafe(serve(state, host, port), loop).result(10)
    return RunningSandbox(f"http://{host}:{bound}", state, loop, thread, runner)
