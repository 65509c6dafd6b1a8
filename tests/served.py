"""The function served for real: functions-framework's app on a loopback HTTP server.

``create_app`` re-executes ``main.py`` as a fresh module, so each served function starts with no
bridge built and reads the environment given to it on its first request.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import functions_framework
import requests
from werkzeug.serving import make_server

from segment_novu import config, logs

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# LOG_EXECUTION_ID is functions-framework's, read when the app is created.
CONTROLLED_VARIABLES = (*config.VARIABLES, "LOG_EXECUTION_ID")


class ServedFunction:
    def __init__(self, url: str, app):
        self.url = url
        self.app = app
        self.session = requests.Session()

    def post(self, body=None, *, path: str = "/", data: bytes | None = None, headers: dict | None = None,
             method: str = "POST", timeout: float = 15) -> requests.Response:
        if data is None and body is not None:
            import json

            data = json.dumps(body).encode()
        final_headers = {"Content-Type": "application/json", **(headers or {})}
        return self.session.request(method, self.url + path, data=data, headers=final_headers, timeout=timeout)


@contextmanager
def serve(env: dict[str, str]):
    saved = {name: os.environ.get(name) for name in CONTROLLED_VARIABLES}
    for name in CONTROLLED_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update({key: str(value) for key, value in env.items()})
    try:
        app = functions_framework.create_app("handler", str(PROJECT_ROOT / "main.py"))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield ServedFunction(f"http://127.0.0.1:{server.server_port}", app)
        finally:
            server.shutdown()
            server.server_close()
    finally:
        logs.configure("INFO")  # the served function sets the process-wide level from LOG_LEVEL
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def serve_process(env: dict[str, str], *, ready_seconds: float = 20.0):
    """The function in a process of its own, as Cloud Run runs each instance: functions-framework's
    command line on a free port, with only ``env`` among the bridge's variables."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {key: value for key, value in os.environ.items() if key not in CONTROLLED_VARIABLES}
    environment.update({key: str(value) for key, value in env.items()})
    command = [sys.executable, "-m", "functions_framework", "--target=handler", "--source=main.py",
               "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    served = ServedFunction(f"http://127.0.0.1:{port}", None)
    try:
        deadline = time.monotonic() + ready_seconds
        while True:
            try:
                requests.get(served.url + "/", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"functions-framework did not start (exit {process.poll()})") from None
                time.sleep(0.05)
        yield served
    finally:
        served.session.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
