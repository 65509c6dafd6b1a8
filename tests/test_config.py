import dataclasses
from pathlib import Path

import pytest

from segment_novu import config
from segment_novu.config import ConfigError, Settings


def load(**env) -> Settings:
    return config.load(env)


def config_error(**env) -> str:
    with pytest.raises(ConfigError) as caught:
        config.load(env)
    return str(caught.value)


# Defaults


def test_defaults():
    settings = load()
    assert dataclasses.replace(settings, mapping_file=None) == Settings(
        novu_api_url="https://api.novu.co",
        novu_api_key=None,
        segment_shared_secrets=(),
        segment_auth_token=None,
        mapping_file=None,
        dry_run=False,
        max_body_bytes=32 * 1024 * 1024,
        max_json_depth=64,
        deadline_seconds=4.0,
        novu_timeout_seconds=2.5,
        max_concurrency=16,
        config_rate_per_second=20.0,
        secret_ttl_seconds=300.0,
        secret_manager_emulator_host=None,
        redis_url=None,
        ledger_max_entries=100_000,
        ledger_ttl_seconds=86_400.0,
        ledger_timeout_seconds=0.2,
        anonymous_events="skip",
        google_cloud_project=None,
        log_level="INFO",
    )
    expected_mapping = config.DEFAULT_MAPPING_FILE if config.DEFAULT_MAPPING_FILE.exists() else None
    assert settings.mapping_file == expected_mapping


def test_blank_values_count_as_unset():
    blank = {name: "  " for name in ("NOVU_API_URL", "DRY_RUN", "MAX_JSON_DEPTH", "ANONYMOUS_EVENTS",
                                      "LOG_LEVEL", "DEADLINE_SECONDS", "REDIS_URL")}
    assert config.load(blank) == load()


@pytest.mark.parametrize("name", config.CREDENTIALS)
@pytest.mark.parametrize("blank", ["", " ", " \n\t"])
def test_a_blank_credential_is_refused_not_read_as_unset(name, blank):
    """A blank secret would turn its check off: authentication must never fail open."""
    with pytest.raises(config.ConfigError, match=f"^{name} is set but blank: give it a value, or remove the variable$"):
        config.load({name: blank})


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379", "redis://:secret@10.0.0.3:6379/2", "rediss://cache.example:6380", "unix:///tmp/r.sock"]
)
def test_redis_url_forms_accepted(url):
    assert config.load({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("localhost:6379", "not 'localhost:6379' (write redis://localhost:6379)"),
        ("10.0.0.3:6379", "not '10.0.0.3:6379' (write redis://10.0.0.3:6379)"),
        ("http://cache:6379", "not 'http://cache:6379'"),
        ("redis://cache:port", "not 'redis://cache:port'"),
        ("redis://", "not 'redis://'"),
        ("redis://:hunter2@cache:x", "not the value given (not shown: it holds a password)"),
    ],
)
def test_a_malformed_redis_url_is_a_configuration_error(url, shown):
    with pytest.raises(config.ConfigError) as raised:
        config.load({"REDIS_URL": url})
    message = str(raised.value)
    assert message.startswith("REDIS_URL must be redis://HOST:PORT[/DB], rediss://HOST:PORT[/DB] or unix:///PATH, ")
    assert message.endswith(shown) and "hunter2" not in message


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("NOVU_API_KEY", "from-environ")
    monkeypatch.setenv("MAX_CONCURRENCY", "3")
    settings = config.load()
    assert (settings.novu_api_key, settings.max_concurrency) == ("from-environ", 3)


def test_text_settings_are_trimmed():
    settings = load(
        NOVU_API_KEY=" key ", SEGMENT_AUTH_TOKEN=" tok ", REDIS_URL=" redis://r:6379/0 ",
        SECRET_MANAGER_EMULATOR_HOST=" localhost:9090 ", GOOGLE_CLOUD_PROJECT=" proj ", LOG_LEVEL=" debug ",
    )
    assert (
        settings.novu_api_key, settings.segment_auth_token, settings.redis_url,
        settings.secret_manager_emulator_host, settings.google_cloud_project, settings.log_level,
    ) == ("key", "tok", "redis://r:6379/0", "localhost:9090", "proj", "DEBUG")


# Numbers

NUMBERS = [
    # variable, field, kind, minimum, maximum
    ("MAX_BODY_BYTES", "max_body_bytes", int, 1024, None),
    ("MAX_JSON_DEPTH", "max_json_depth", int, 4, 100),
    ("DEADLINE_SECONDS", "deadline_seconds", float, 0.5, 60),
    ("NOVU_TIMEOUT_SECONDS", "novu_timeout_seconds", float, 0.1, 60),
    ("MAX_CONCURRENCY", "max_concurrency", int, 1, 256),
    ("NOVU_CONFIG_RATE_PER_SECOND", "config_rate_per_second", float, 1, 10_000),
    ("SECRET_TTL_SECONDS", "secret_ttl_seconds", float, 0, None),
    ("LEDGER_MAX_ENTRIES", "ledger_max_entries", int, 0, None),
    ("LEDGER_TTL_SECONDS", "ledger_ttl_seconds", float, 1, None),
    ("LEDGER_TIMEOUT_SECONDS", "ledger_timeout_seconds", float, 0.01, 5),
]
FLOATS = [variable for variable, _, kind, _, _ in NUMBERS if kind is float]


def bounds(minimum, maximum) -> str:
    return f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"


@pytest.mark.parametrize("variable, field, kind, minimum, maximum", NUMBERS, ids=[n[0] for n in NUMBERS])
def test_number_bounds_are_inclusive(variable, field, kind, minimum, maximum):
    for value in (minimum, maximum):
        if value is not None:
            parsed = getattr(load(**{variable: f" {value} "}), field)
            assert parsed == value and type(parsed) is kind


@pytest.mark.parametrize("variable, field, kind, minimum, maximum", NUMBERS, ids=[n[0] for n in NUMBERS])
def test_number_out_of_range(variable, field, kind, minimum, maximum):
    below = "-1" if minimum == 0 else str(kind(minimum) - (1 if kind is int else minimum / 2))
    assert config_error(**{variable: below}) == f"{variable} must be {bounds(minimum, maximum)}, not {below}"
    if maximum is not None:
        above = str(maximum + 1)
        assert config_error(**{variable: above}) == f"{variable} must be {bounds(minimum, maximum)}, not {above}"


@pytest.mark.parametrize("variable, field, kind, minimum, maximum", NUMBERS, ids=[n[0] for n in NUMBERS])
@pytest.mark.parametrize("value", ["lots", "1,5", "0x10", "5s"])
def test_number_not_a_number(variable, field, kind, minimum, maximum, value):
    message = config_error(**{variable: value})
    assert message.startswith(f"{variable} must be a") and message.endswith(f", not {value!r}")
    assert ("whole number" if kind is int else "number") in message


@pytest.mark.parametrize("variable", [n[0] for n in NUMBERS if n[2] is int])
def test_integer_variables_refuse_fractions(variable):
    assert config_error(**{variable: "12.5"}).startswith(f"{variable} must be a")


@pytest.mark.parametrize("variable", FLOATS)
def test_float_variables_refuse_nan(variable):
    assert config_error(**{variable: "nan"}).startswith(f"{variable} must be")


@pytest.mark.parametrize("variable", ["DEADLINE_SECONDS", "NOVU_TIMEOUT_SECONDS", "LEDGER_TIMEOUT_SECONDS"])
def test_bounded_floats_refuse_infinity(variable):
    assert config_error(**{variable: "inf"}).startswith(f"{variable} must be between")


# DRY_RUN


@pytest.mark.parametrize(
    "value, dry_run",
    [("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True),
     ("0", False), ("false", False), ("No", False), ("OFF", False), ("", False)],
)
def test_dry_run(value, dry_run):
    assert load(DRY_RUN=value).dry_run is dry_run


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "y"])
def test_dry_run_refuses_anything_else(value):
    assert config_error(DRY_RUN=value) == f"DRY_RUN must be true or false, not {value!r}"


# Shared secrets


@pytest.mark.parametrize(
    "env, secrets",
    [
        ({"SEGMENT_SHARED_SECRET": "current"}, ("current",)),
        ({"SEGMENT_SHARED_SECRET": "current", "SEGMENT_SHARED_SECRET_PREVIOUS": "old"}, ("current", "old")),
        ({"SEGMENT_SHARED_SECRET_PREVIOUS": "old"}, ("old",)),
        ({"SEGMENT_SHARED_SECRET": " current ", "SEGMENT_SHARED_SECRET_PREVIOUS": " old\n"}, ("current", "old")),
        ({}, ()),
    ],
)
def test_shared_secrets(env, secrets):
    assert config.load(env).segment_shared_secrets == secrets


# NOVU_API_URL


@pytest.mark.parametrize(
    "value, url",
    [
        ("https://eu.api.novu.co", "https://eu.api.novu.co"),
        ("https://eu.api.novu.co/", "https://eu.api.novu.co"),
        ("http://localhost:3000//", "http://localhost:3000"),
        ("https://novu.example.com/api/", "https://novu.example.com/api"),
    ],
)
def test_novu_api_url(value, url):
    assert load(NOVU_API_URL=value).novu_api_url == url


@pytest.mark.parametrize("value", ["api.novu.co", "ftp://api.novu.co", "ws://localhost:3000", "/v1"])
def test_novu_api_url_must_be_http(value):
    assert config_error(NOVU_API_URL=value) == f"NOVU_API_URL must be an http(s) URL, not {value.rstrip('/')!r}"


# ANONYMOUS_EVENTS


@pytest.mark.parametrize(
    "value, expected",
    [("skip", "skip"), ("SKIP", "skip"), ("anonymous-id", "anonymous-id"), (" Anonymous-ID ", "anonymous-id")],
)
def test_anonymous_events(value, expected):
    assert load(ANONYMOUS_EVENTS=value).anonymous_events == expected


@pytest.mark.parametrize(
    "value, shown", [("drop", "drop"), ("anonymousId", "anonymousid"), ("anonymous_id", "anonymous_id")]
)
def test_anonymous_events_refuses_anything_else(value, shown):
    assert config_error(ANONYMOUS_EVENTS=value) == f"ANONYMOUS_EVENTS must be skip or anonymous-id, not {shown!r}"


# MAPPING_FILE


@pytest.mark.parametrize(
    "value, path",
    [
        ("/etc/bridge/mapping.json", Path("/etc/bridge/mapping.json")),
        ("config/mapping.json", config.PROJECT_ROOT / "config" / "mapping.json"),
    ],
)
def test_mapping_file(value, path):
    assert load(MAPPING_FILE=value).mapping_file == path


@pytest.mark.parametrize(
    ("plan", "trigger", "configuration"),
    [("free", 60, 20), ("Pro", 240, 80), ("team", 600, 200), ("enterprise", 6000, 2000)],
)
def test_a_novu_plan_fills_both_rates(plan, trigger, configuration):
    settings = config.load({"NOVU_PLAN": plan})
    assert (settings.trigger_rate_per_second, settings.config_rate_per_second) == (trigger, configuration)


def test_a_rate_given_beside_the_plan_wins():
    settings = config.load({"NOVU_PLAN": "free", "NOVU_TRIGGER_RATE_PER_SECOND": "100"})
    assert (settings.trigger_rate_per_second, settings.config_rate_per_second) == (100, 20)


def test_without_a_plan_triggers_are_not_paced():
    assert config.load({}).trigger_rate_per_second is None


def test_an_unknown_plan_is_a_configuration_error():
    with pytest.raises(config.ConfigError, match="^NOVU_PLAN must be one of free, pro, team, enterprise, not 'gold'$"):
        config.load({"NOVU_PLAN": "gold"})
