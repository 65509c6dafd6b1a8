"""Every environment variable the bridge reads, parsed and validated once into frozen settings.

docs/configuration.md documents each of these; keep the two in step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from segment_novu.delivery import rate_limits

DEFAULT_NOVU_API_URL = "https://api.novu.co"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAPPING_FILE = PROJECT_ROOT / "mapping.json"
DEPTH_CEILING = 100


# LOG_EVENTS: a line per event, or only for events not delivered (a big batch's lines are billed).
LOG_EVENTS_CHOICES = ("all", "undelivered")

# Every environment variable ``load`` reads; each has one row in docs/configuration.md's table.
VARIABLES = (
    "NOVU_API_URL", "NOVU_API_KEY", "SEGMENT_SHARED_SECRET", "SEGMENT_SHARED_SECRET_PREVIOUS",
    "SEGMENT_AUTH_TOKEN", "ACCEPT_FIRST_ELEMENT_SIGNATURE", "MAPPING_FILE", "DRY_RUN", "ANONYMOUS_EVENTS",
    "DEADLINE_SECONDS", "NOVU_TIMEOUT_SECONDS", "MAX_CONCURRENCY", "NOVU_PLAN", "NOVU_TRIGGER_RATE_PER_SECOND",
    "NOVU_CONFIG_RATE_PER_SECOND", "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH", "SECRET_TTL_SECONDS", "SECRET_MANAGER_EMULATOR_HOST", "REDIS_URL", "LEDGER_MAX_ENTRIES",
    "LEDGER_TTL_SECONDS", "LEDGER_TIMEOUT_SECONDS", "WORKFLOW_DISCOVERY", "WORKFLOW_CACHE_SECONDS",
    "GOOGLE_CLOUD_PROJECT", "LOG_LEVEL", "LOG_EVENTS",
)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    novu_api_url: str = DEFAULT_NOVU_API_URL
    novu_api_key: str | None = None
    segment_shared_secrets: tuple[str, ...] = ()
    segment_auth_token: str | None = None
    accept_first_element_signature: bool = False
    mapping_file: Path | None = None
    dry_run: bool = False
    max_body_bytes: int = 32 * 1024 * 1024
    max_json_depth: int = 64
    deadline_seconds: float = 4.0
    novu_timeout_seconds: float = 2.5
    max_concurrency: int = 16
    trigger_rate_per_second: float | None = None
    config_rate_per_second: float = 20.0
    secret_ttl_seconds: float = 300.0
    secret_manager_emulator_host: str | None = None
    redis_url: str | None = None
    ledger_max_entries: int = 100_000
    ledger_ttl_seconds: float = 86_400.0
    ledger_timeout_seconds: float = 0.2
    anonymous_events: str = "skip"
    workflow_discovery: bool = False
    workflow_cache_seconds: float = 60.0
    google_cloud_project: str | None = None
    log_level: str = "INFO"
    log_events: str = "all"


# A credential that is set but blank would turn its check off: it is refused, never read as "unset".
CREDENTIALS = ("NOVU_API_KEY", "SEGMENT_SHARED_SECRET", "SEGMENT_SHARED_SECRET_PREVIOUS", "SEGMENT_AUTH_TOKEN")


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _credential(env: Mapping[str, str], name: str) -> str | None:
    if name in env and not env[name].strip():
        raise ConfigError(f"{name} is set but blank: give it a value, or remove the variable")
    return _text(env, name)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _text(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


_KIND_NAMES = {int: "a whole number", float: "a number"}


def _number(env, name, default, kind, minimum, maximum=None):
    value = _text(env, name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{name} must be {_KIND_NAMES[kind]}, not {value!r}") from None
    if not math.isfinite(number) or number < minimum or (maximum is not None and number > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name} must be {bounds}, not {value}")
    return number


def _mapping_file(env: Mapping[str, str]) -> Path | None:
    configured = _text(env, "MAPPING_FILE")
    if configured is None:
        return DEFAULT_MAPPING_FILE if DEFAULT_MAPPING_FILE.exists() else None
    path = Path(configured)
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    return path


def _api_url(env: Mapping[str, str]) -> str:
    url = (_text(env, "NOVU_API_URL") or DEFAULT_NOVU_API_URL).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"NOVU_API_URL must be an http(s) URL, not {url!r}")
    return url


REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(env: Mapping[str, str]) -> str | None:
    url = _text(env, "REDIS_URL")
    if url is None:
        return None
    shown = repr(url) if "@" not in url else "the value given (not shown: it holds a password)"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (reading it raises when the port is not a number)
        where = parts.path if parts.scheme == "unix" else parts.hostname
        well_formed = parts.scheme in REDIS_SCHEMES and bool(where)
    except ValueError:
        well_formed = False
    if not well_formed:
        hint = f" (write redis://{url})" if "://" not in url and "@" not in url else ""
        raise ConfigError(
            f"REDIS_URL must be redis://HOST:PORT[/DB], rediss://HOST:PORT[/DB] or unix:///PATH, not {shown}{hint}"
        )
    return url


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first when unset), case-insensitive."""
    value = (_text(env, name) or choices[0]).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be {' or '.join(choices)}, not {value!r}")
    return value


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    secrets = tuple(
        value
        for value in (_credential(env, "SEGMENT_SHARED_SECRET"), _credential(env, "SEGMENT_SHARED_SECRET_PREVIOUS"))
        if value
    )
    anonymous = _choice(env, "ANONYMOUS_EVENTS", ("skip", "anonymous-id"))
    plan = (_text(env, "NOVU_PLAN") or "").lower()
    if plan and plan not in rate_limits.PLANS:
        raise ConfigError(f"NOVU_PLAN must be one of {', '.join(rate_limits.PLANS)}, not {plan!r}")
    plan_rates = rate_limits.PLANS[plan] if plan else (None, Settings.config_rate_per_second)
    novu_api_key = _credential(env, "NOVU_API_KEY")
    # Without a key there is no list to read, whatever the flag says.
    workflow_discovery = _flag(env, "WORKFLOW_DISCOVERY", True) and novu_api_key is not None
    return Settings(
        novu_api_url=_api_url(env),
        novu_api_key=novu_api_key,
        segment_shared_secrets=secrets,
        segment_auth_token=_credential(env, "SEGMENT_AUTH_TOKEN"),
        accept_first_element_signature=_flag(env, "ACCEPT_FIRST_ELEMENT_SIGNATURE", False),
        mapping_file=_mapping_file(env),
        dry_run=_flag(env, "DRY_RUN", False),
        max_body_bytes=_number(env, "MAX_BODY_BYTES", Settings.max_body_bytes, int, 1024),
        max_json_depth=_number(env, "MAX_JSON_DEPTH", Settings.max_json_depth, int, 4, DEPTH_CEILING),
        deadline_seconds=_number(env, "DEADLINE_SECONDS", Settings.deadline_seconds, float, 0.5, 60),
        novu_timeout_seconds=_number(env, "NOVU_TIMEOUT_SECONDS", Settings.novu_timeout_seconds, float, 0.1, 60),
        max_concurrency=_number(env, "MAX_CONCURRENCY", Settings.max_concurrency, int, 1, 256),
        trigger_rate_per_second=_number(env, "NOVU_TRIGGER_RATE_PER_SECOND", plan_rates[0], float, 1, 100_000),
        config_rate_per_second=_number(env, "NOVU_CONFIG_RATE_PER_SECOND", plan_rates[1], float, 1, 10_000),
        secret_ttl_seconds=_number(env, "SECRET_TTL_SECONDS", Settings.secret_ttl_seconds, float, 0),
        secret_manager_emulator_host=_text(env, "SECRET_MANAGER_EMULATOR_HOST"),
        redis_url=_redis_url(env),
        ledger_max_entries=_number(env, "LEDGER_MAX_ENTRIES", Settings.ledger_max_entries, int, 0),
        ledger_ttl_seconds=_number(env, "LEDGER_TTL_SECONDS", Settings.ledger_ttl_seconds, float, 1),
        ledger_timeout_seconds=_number(
            env, "LEDGER_TIMEOUT_SECONDS", Settings.ledger_timeout_seconds, float, 0.01, 5
        ),
        anonymous_events=anonymous,
        workflow_discovery=workflow_discovery,
        workflow_cache_seconds=_number(
            env, "WORKFLOW_CACHE_SECONDS", Settings.workflow_cache_seconds, float, 1, 86_400
        ),
        google_cloud_project=_text(env, "GOOGLE_CLOUD_PROJECT"),
        log_level=(_text(env, "LOG_LEVEL") or "INFO").upper(),
        log_events=_choice(env, "LOG_EVENTS", LOG_EVENTS_CHOICES),
    )
