"""The whole system on one machine, run by ``scripts/inbox-demo`` (which builds the venv and bundle first).

Starts three processes: the Novu sandbox (a local stand-in for Novu, HMAC on), the function as Cloud
Run serves it (functions-framework, real delivery) pointed at the sandbox, and the Inbox page's
server. When all three answer it prints exactly two lines on stdout:

    function: http://127.0.0.1:<port>
    inbox: http://127.0.0.1:<port>/

then runs until stopped (Ctrl-C or SIGTERM), stopping the three with it. Everything else they say
(the function's JSON log lines among it) goes to stderr. Ports: free ones, or ``FUNCTION_PORT`` and
``INBOX_PORT``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = PROJECT_ROOT / "examples" / "inbox" / "workflows.json"
PAGE_SERVER = PROJECT_ROOT / "examples" / "inbox" / "server.py"
HOST = "127.0.0.1"
SECRET_KEY = "sandbox-secret-key"
APPLICATION_IDENTIFIER = "sandbox-app"
START_SECONDS = 60.0


class DemoError(Exception):
    """A part did not start; the message says which and why."""


def _port(variable: str) -> int:
    configured = os.environ.get(variable, "").strip()
    if configured:
        if not configured.isdigit() or not 0 < int(configured) < 65536:
            raise DemoError(f"{variable} must be a port number, not {configured!r}")
        return int(configured)
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _relay(stream, prefix: bytes) -> None:
    """Copy a child's output to our stderr, line by line, until it closes."""
    for line in iter(stream.readline, b""):
        sys.stderr.buffer.write(prefix + line)
        sys.stderr.buffer.flush()


class Demo:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}

    def spawn(self, name: str, command: list[str], env: dict | None = None, *, announces: bool) -> subprocess.Popen:
        """Start a child; its output goes to our stderr, but for the ready line of one that ``announces``."""
        child = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**self.environment, **(env or {})},
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.children.append((name, child))
        threading.Thread(target=_relay, args=(child.stderr, f"[{name}] ".encode()), daemon=True).start()
        if not announces:
            threading.Thread(target=_relay, args=(child.stdout, f"[{name}] ".encode()), daemon=True).start()
        return child

    def ready_line(self, name: str, child: subprocess.Popen, prefix: str) -> str:
        """The child's first stdout line, which must start with ``prefix``; the rest goes to stderr."""
        line = child.stdout.readline().decode(errors="replace").strip()
        if not line.startswith(prefix):
            child.wait(5)
            raise DemoError(f"{name} did not start (exit status {child.poll()}); its output is above")
        threading.Thread(target=_relay, args=(child.stdout, f"[{name}] ".encode()), daemon=True).start()
        return line[len(prefix):].strip()

    def wait_until_answering(self, name: str, child: subprocess.Popen, url: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise DemoError(f"{name} stopped (exit status {child.returncode}); its output is above")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer is an answer (the function answers a GET with 405)
            except OSError:
                time.sleep(0.1)
        raise DemoError(f"{name} did not answer at {url} within {START_SECONDS:.0f} s")

    def start(self) -> tuple[str, str]:
        function_port, inbox_port = _port("FUNCTION_PORT"), _port("INBOX_PORT")
        python = sys.executable
        sandbox = self.spawn("novu sandbox", [
            python, "-m", "novu_sandbox", "--host", HOST, "--port", "0", "--workflows", str(WORKFLOWS),
            "--secret-key", SECRET_KEY, "--application-identifier", APPLICATION_IDENTIFIER, "--hmac"],
            announces=True)
        sandbox_url = self.ready_line("novu sandbox", sandbox, "novu sandbox:")
        socket_url = "ws" + sandbox_url[len("http"):] + "/socket"
        function = self.spawn("function", [
            str(Path(python).parent / "functions-framework"), "--target=handler", "--source=main.py",
            "--host", HOST, "--port", str(function_port)],
            env={"NOVU_API_URL": sandbox_url, "NOVU_API_KEY": SECRET_KEY, "DRY_RUN": "false"}, announces=False)
        page = self.spawn("inbox page", [
            python, str(PAGE_SERVER), "--host", HOST, "--port", str(inbox_port),
            "--application-identifier", APPLICATION_IDENTIFIER, "--api-url", sandbox_url,
            "--socket-url", socket_url, "--socket-type", "cloud"],
            env={"NOVU_SECRET_KEY": SECRET_KEY}, announces=True)
        inbox_url = self.ready_line("inbox page", page, "inbox:")
        function_url = f"http://{HOST}:{function_port}"
        self.wait_until_answering("function", function, function_url)
        self.wait_until_answering("inbox page", page, inbox_url)
        return function_url, inbox_url

    def watch(self, stopped: threading.Event) -> int:
        while not stopped.wait(0.5):
            for name, child in self.children:
                if child.poll() is not None:
                    print(f"{name} stopped (exit status {child.returncode})", file=sys.stderr)
                    return 1
        return 0

    def stop(self) -> None:
        for _, child in self.children:
            if child.poll() is None:
                child.terminate()
        for _, child in self.children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


def main() -> int:
    stopped = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stopped.set())
    demo = Demo()
    try:
        function_url, inbox_url = demo.start()
        print(f"function: {function_url}", flush=True)
        print(f"inbox: {inbox_url}", flush=True)
        return demo.watch(stopped)
    except DemoError as problem:
        print(f"inbox demo: {problem}", file=sys.stderr)
        return 1
    finally:
        demo.stop()


if __name__ == "__main__":
    raise SystemExit(main())
