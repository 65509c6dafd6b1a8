"""``python -m novu_sandbox``: serve the sandbox (a local stand-in for Novu, not Novu) until stopped.

Prints exactly one line when it is ready: ``novu sandbox: http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from novu_sandbox import DEFAULT_APPLICATION_IDENTIFIER, DEFAULT_SECRET_KEY, serve
from novu_sandbox.state import Sandbox
from novu_sandbox.workflows import WorkflowsError, load_workflows


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="python -m novu_sandbox",
        description="A local stand-in for the parts of Novu the bridge and Novu's Inbox use (not Novu).")
    main_parser.add_argument("--host", default="127.0.0.1")
    main_parser.add_argument("--port", type=int, default=0, help="0 (the default): a free port")
    main_parser.add_argument("--workflows", metavar="FILE", required=True,
                             help="the workflows file (examples/inbox/workflows.json)")
    main_parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY,
                             help="the secret key REST calls must carry (ApiKey) and HMAC is keyed with")
    main_parser.add_argument("--application-identifier", default=DEFAULT_APPLICATION_IDENTIFIER,
                             help="the Inbox's applicationIdentifier")
    main_parser.add_argument("--hmac", action="store_true",
                             help="require the Inbox's subscriberHash (HMAC-SHA256 of the subscriber id)")
    return main_parser


async def run(arguments, state: Sandbox) -> None:
    runner, port = await serve(state, arguments.host, arguments.port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopped.set)
    print(f"novu sandbox: http://{arguments.host}:{port}", flush=True)
    await stopped.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        workflows = load_workflows(arguments.workflows)
    except WorkflowsError as problem:
        print(f"novu sandbox: {problem}", file=sys.stderr)
        return 2
    state = Sandbox(workflows, secret_key=arguments.secret_key,
                    application_identifier=arguments.application_identifier, hmac=arguments.hmac)
    asyncio.run(run(arguments, state))
    return 0


raise SystemExit(main())
