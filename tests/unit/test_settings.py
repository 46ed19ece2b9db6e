"""Settings.check() and the parsing before it: every value the gateway cannot use is refused at
start with one line that names the setting and says what it takes. (The SSRF guard's settings
are tested in tests/unit/test_targets.py.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import MIN_KEY_LENGTH, Settings, SettingsError

# Distributed: the database every process shares.
SHARED = {"database_url": "postgresql+asyncpg://gateway@db.example.com/gateway"}
KEY = "k" * MIN_KEY_LENGTH


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"response_timeout": 0}, "GATEWAY_RESPONSE_TIMEOUT must be a positive number of seconds"),
        ({"max_body_bytes": 1023}, "GATEWAY_MAX_BODY_BYTES must be at least 1024"),
        ({"dispatch_concurrency": 0}, "GATEWAY_DISPATCH_CONCURRENCY must be at least 1"),
        ({"token_ttl": 0}, "GATEWAY_TOKEN_TTL must be at least 1 second"),
        ({"rotation_grace": -1}, "GATEWAY_ROTATION_GRACE must be 0 or more seconds"),
        ({"rate_limit": -1.0}, "GATEWAY_RATE_LIMIT must be 0 (no limit) or more requests per second"),
        ({"rate_limit": math.inf}, "GATEWAY_RATE_LIMIT must be 0 (no limit) or more requests per second"),
        ({"rate_burst": 0}, "GATEWAY_RATE_BURST must be at least 1 request"),
        ({"webhook_rate_limit": math.nan}, "GATEWAY_WEBHOOK_RATE_LIMIT must be 0 (no limit) or more"),
        ({"webhook_rate_burst": 0}, "GATEWAY_WEBHOOK_RATE_BURST must be at least 1 request"),
        ({"stop_grace": -0.5}, "GATEWAY_STOP_GRACE must be 0 (cut deliveries off at once) or more seconds"),
        (
            {"max_trigger_depth": -1},
            "GATEWAY_MAX_TRIGGER_DEPTH must be 0 (no triggers from deliveries) or more",
        ),
        ({"max_bundle": 0}, "GATEWAY_MAX_BUNDLE must be from 1 to 1000 triggers"),
        ({"max_bundle": 1001}, "GATEWAY_MAX_BUNDLE must be from 1 to 1000 triggers"),
        ({"max_bundle_bytes": 1023}, "GATEWAY_MAX_BUNDLE_BYTES must be at least 1024"),
        (
            {"callback_failure_limit": -1},
            "GATEWAY_CALLBACK_FAILURE_LIMIT must be 0 (no limit) or more failures",
        ),
        ({"callback_invocation_failure_limit": -1}, "GATEWAY_CALLBACK_INVOCATION_FAILURE_LIMIT must be 0"),
        ({"token_failure_limit": -1}, "GATEWAY_TOKEN_FAILURE_LIMIT must be 0 (no limit) or more failures"),
        ({"token_client_failure_limit": -1}, "GATEWAY_TOKEN_CLIENT_FAILURE_LIMIT must be 0"),
        ({"token_address_failure_limit": -1}, "GATEWAY_TOKEN_ADDRESS_FAILURE_LIMIT must be 0"),
        ({"failure_window": 0}, "GATEWAY_FAILURE_WINDOW must be a positive number of seconds"),
        ({"failure_window": math.inf}, "GATEWAY_FAILURE_WINDOW must be a positive number of seconds"),
        ({"header_timeout": 0}, "GATEWAY_HEADER_TIMEOUT must be a positive number of seconds"),
        ({"body_timeout": math.nan}, "GATEWAY_BODY_TIMEOUT must be a positive number of seconds"),
        ({"max_connections": 0}, "GATEWAY_MAX_CONNECTIONS must be at least 1"),
        ({"sweep_interval": 0}, "GATEWAY_SWEEP_INTERVAL must be a positive number of seconds"),
        ({"requeue_after": -1.0}, "GATEWAY_REQUEUE_AFTER must be a positive number of seconds"),
        ({"stranded_grace": math.inf}, "GATEWAY_STRANDED_GRACE must be a positive number of seconds"),
        (
            {"redis_url": "http://127.0.0.1:6379", "secret_key": KEY, **SHARED},
            "GATEWAY_REDIS_URL must be a redis://",
        ),
        ({"worker_poll_delay": 0}, "GATEWAY_WORKER_POLL_DELAY must be a positive number of seconds"),
        ({"public_url": "gateway.example.com"}, "GATEWAY_PUBLIC_URL must start with http:// or https://"),
        (
            {"secret_key": f"{KEY},short"},
            f"every GATEWAY_SECRET_KEY must be at least {MIN_KEY_LENGTH} characters",
        ),
        ({"redis_url": "redis://127.0.0.1:6379"}, "set GATEWAY_SECRET_KEY when GATEWAY_REDIS_URL is set"),
        (
            {"bootstrap_client_id": "admin"},
            "set both GATEWAY_BOOTSTRAP_CLIENT_ID and GATEWAY_BOOTSTRAP_CLIENT_SECRET",
        ),
        ({"bootstrap_client_secret": "s" * 32}, "set both GATEWAY_BOOTSTRAP_CLIENT_ID"),
        ({"database_url": "garbage"}, "GATEWAY_DATABASE_URL must be a URL such as sqlite+aiosqlite:///"),
        (
            {"database_url": "postgresql://u:secret@db/gw"},
            "GATEWAY_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (the async "
            "drivers), not postgresql://; write postgresql+asyncpg:// for postgresql://",
        ),
        ({"database_url": "sqlite:///gateway.db"}, "GATEWAY_DATABASE_URL must start with"),
        (
            {"redis_url": "redis://127.0.0.1:6379", "secret_key": KEY},
            "GATEWAY_REDIS_URL needs a shared database",
        ),
        ({"log_level": "verbose"}, "GATEWAY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"max_response_deadline": "banana"}, "GATEWAY_MAX_RESPONSE_DEADLINE must be an ISO-8601 duration"),
        ({"triggers_file": "/no/such/triggers.yaml"}, "GATEWAY_TRIGGERS_FILE names '/no/such/triggers.yaml'"),
    ],
)
def test_each_unusable_value_is_refused_in_one_line_naming_its_setting(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({}, **overrides)
    text = str(refused.value)
    assert text.startswith(message)
    assert "\n" not in text


@pytest.mark.parametrize(
    ("overrides"),
    [
        # The edges of what is allowed.
        {"rate_limit": 0.0, "rate_burst": 0, "webhook_rate_limit": 0.0, "webhook_rate_burst": 0},
        {"rotation_grace": 0, "stop_grace": 0.0, "max_trigger_depth": 0, "max_bundle": 1000},
        {"max_body_bytes": 1024, "max_bundle_bytes": 1024, "max_bundle": 1, "token_ttl": 1},
        {"callback_failure_limit": 0, "token_failure_limit": 0, "token_address_failure_limit": 0},
        {"redis_url": "rediss://cache.example.com:6380", "secret_key": f" {KEY} , {KEY}x ", **SHARED},
        {"redis_url": "unix:///run/redis.sock", "secret_key": KEY, **SHARED},
        {
            "public_url": "https://gateway.example.com",
            "bootstrap_client_id": "a",
            "bootstrap_client_secret": "b",
        },
    ],
)
def test_the_edges_of_each_range_are_accepted(overrides: dict[str, Any]) -> None:
    settings = Settings.from_env({}, **overrides)
    for name, value in overrides.items():
        assert getattr(settings, name) == value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_RESPONSE_TIMEOUT": "ten"}, "GATEWAY_RESPONSE_TIMEOUT must be a number, got 'ten'"),
        ({"GATEWAY_PORT": "80.5"}, "GATEWAY_PORT must be a number, got '80.5'"),
        ({"GATEWAY_REQUIRE_HTTPS": "maybe"}, "GATEWAY_REQUIRE_HTTPS must be true or false"),
        ({"GATEWAY_MAX_BUNDLE": "0"}, "GATEWAY_MAX_BUNDLE must be from 1 to 1000 triggers"),
    ],
)
def test_environment_values_are_parsed_then_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_environment_values_are_read_by_their_names() -> None:
    settings = Settings.from_env(
        {"GATEWAY_RESPONSE_TIMEOUT": "2.5", "GATEWAY_PORT": "9000", "GATEWAY_QUEUE_NAME": "q", "OTHER": "x"}
    )
    assert (settings.response_timeout, settings.port, settings.queue_name) == (2.5, 9000, "q")


def test_secret_keys_are_trimmed_and_handed_to_itsdangerous_oldest_first() -> None:
    # The first key listed signs; itsdangerous signs with the last of its list.
    settings = Settings.from_env({}, secret_key=f" new-{KEY} , old-{KEY} ,")
    assert settings.signing_keys == [f"old-{KEY}", f"new-{KEY}"]


def test_without_a_secret_key_one_is_generated_into_a_private_file_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "key"
    settings = Settings.from_env({}, secret_key_file=str(path))
    [generated] = settings.signing_keys
    assert len(generated) >= MIN_KEY_LENGTH
    assert path.stat().st_mode & 0o777 == 0o600
    assert settings.signing_keys == [generated]  # read again, not generated again
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_key_file_holding_no_usable_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("short\n")
    settings = Settings.from_env({}, secret_key_file=str(path))
    with pytest.raises(SettingsError) as refused:
        _ = settings.signing_keys
    assert str(refused.value) == f"{path} holds no usable key; delete it to have a new one generated"
