"""A fake Secret Manager on loopback, answering ``AccessSecretVersion`` over real gRPC.

No official emulator exists; the real client reaches this one through an insecure channel
(``SecretSource(..., emulator_host=fake.host)``).

    with FakeSecretManager() as fake:
        fake.host                                   # 127.0.0.1:PORT
        fake.set("projects/p/secrets/key", "v1")    # version 1, now latest
        fake.fail_with(grpc.StatusCode.UNAVAILABLE) # every access fails; None = healthy again
        fake.corrupt_checksum(True)                 # answers carry a wrong data_crc32c
        fake.delay(0.2)                             # answers wait this long first
        fake.calls                                  # version names requested, in order
"""

from __future__ import annotations

import re
import threading
import time
from concurrent import futures

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import (
    AccessSecretVersionRequest,
    AccessSecretVersionResponse,
    SecretPayload,
)

_VERSION_NAME = re.compile(r"^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$")


class FakeSecretManager:
    def __init__(self) -> None:
        self.host = ""
        self.calls: list[str] = []
        self._versions: dict[str, list[str]] = {}
        self._failure: grpc.StatusCode | None = None
        self._corrupt = False
        self._delay = 0.0
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    def __enter__(self) -> FakeSecretManager:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> FakeSecretManager:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.method_handlers_generic_handler(
            "google.cloud.secretmanager.v1.SecretManagerService",
            {
                "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                    self._access,
                    request_deserializer=AccessSecretVersionRequest.deserialize,
                    response_serializer=AccessSecretVersionResponse.serialize,
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.host = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def set(self, secret_path: str, value: str) -> None:
        """Add a version to ``projects/P/secrets/S`` (created if new); ``latest`` now points to it."""
        with self._lock:
            self._versions.setdefault(secret_path, []).append(value)

    def fail_with(self, code: grpc.StatusCode | None) -> None:
        self._failure = code

    def corrupt_checksum(self, on: bool) -> None:
        self._corrupt = on

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def _access(self, request: AccessSecretVersionRequest, context) -> AccessSecretVersionResponse:
        with self._lock:
            self.calls.append(request.name)
        if self._delay:
            time.sleep(self._delay)
        if self._failure is not None:
            context.abort(self._failure, "fake failure")
        match = _VERSION_NAME.match(request.name)
        versions = self._versions.get(match.group(1), []) if match else []
        version = match.group(2) if match else ""
        if version == "latest" and versions:
            number = len(versions)
        elif version.isdigit() and 1 <= int(version) <= len(versions):
            number = int(version)
        else:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{request.name}] not found.")
        data = versions[number - 1].encode("utf-8")
        checksum = google_crc32c.value(data) ^ (1 if self._corrupt else 0)
        return AccessSecretVersionResponse(
            name=f"{match.group(1)}/versions/{number}",
            payload=SecretPayload(data=data, data_crc32c=checksum),
        )
