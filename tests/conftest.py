import pytest

from tests.secret_manager_server import FakeSecretManager


@pytest.fixture
def secret_manager():
    with FakeSecretManager() as fake:
        yield fake
