import json

import pytest

from tests.secret_manager_server import FakeSecretManager


@pytest.fixture
def secret_manager():
    with FakeSecretManager() as fake:
        yield fake


@pytest.fixture
def novu():
    from tests.novu_standin import NovuStandIn

    with NovuStandIn() as standin:
        yield standin


@pytest.fixture
def serve_function(novu):
    """Serve the function against the Novu stand-in; extra settings by keyword."""
    from tests.served import serve

    stack = []

    def start(**env):
        settings = {"NOVU_API_URL": novu.url, "NOVU_API_KEY": "test-novu-key", **env}
        settings = {key: value for key, value in settings.items() if value is not None}
        context = serve(settings)
        served = context.__enter__()
        stack.append(context)
        return served

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def unused_port():
    """A loopback port with nothing listening: connections to it are refused."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def redis_service():
    """One real redis-server for the session (the ledger shared by function instances)."""
    from tests.redis_server import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_service):
    import redis

    client = redis.Redis.from_url(redis_service.url)
    client.flushall()
    client.close()
    return redis_service.url


@pytest.fixture
def with_mapping(serve_function, tmp_path):
    """The served function with a mapping file (discovery off: the Novu calls asserted are the deliveries)."""

    def start(document: dict, **env):
        path = tmp_path / "mapping.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return serve_function(MAPPING_FILE=str(path), WORKFLOW_DISCOVERY="false", **env)

    return start
