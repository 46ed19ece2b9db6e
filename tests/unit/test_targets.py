"""The SSRF guard's policy (adapters/outbound/target_policy.py), its settings, and its hooks
in the client."""

from __future__ import annotations

import socket
from ipaddress import IPv4Network, IPv6Network

import httpx
import pytest

from gateway.adapters.outbound import http
from gateway.adapters.outbound import target_policy as targets
from gateway.adapters.outbound.target_policy import TargetPolicy, TargetRefused
from gateway.domain.delivery import Delivery
from gateway.domain.errors import Invalid
from gateway.domain.model import DispatchMode
from gateway.settings import Settings, SettingsError

DEFAULT = TargetPolicy()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("127.0.0.1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104
        ("0.1.2.3", "a 'this network' address"),
        ("169.254.169.254", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a broadcast address"),
        ("192.0.2.1", "a special-purpose address that is not publicly routable"),
        ("::", "an unspecified address"),
        ("::1", "a loopback address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("fc00::1", "a private (unique local) address"),
        ("fd12:3456::1", "a private (unique local) address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a special-purpose address that is not publicly routable"),
        ("::7f00:1", "a special-purpose address that is not publicly routable"),  # IPv4-compatible
        ("::ffff:10.0.0.1", "an IPv6 form of 10.0.0.1, a private address"),
        ("::ffff:127.0.0.1", "an IPv6 form of 127.0.0.1, a loopback address"),
        ("64:ff9b::7f00:1", "an IPv6 form of 127.0.0.1, a loopback address"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "an IPv6 form of 169.254.169.254, a link-local address"),
        ("2002:7f00:1::", "an IPv6 form of 127.0.0.1, a loopback address"),  # 6to4
        ("2002:c0a8:101::1", "an IPv6 form of 192.168.1.1, a private address"),
        ("not-an-address", "not an IP address"),
    ],
)
def test_non_public_addresses_are_refused_with_what_they_are(address: str, kind: str) -> None:
    assert DEFAULT.verdict(address) == kind
    with pytest.raises(TargetRefused, match="the gateway only calls public addresses"):
        DEFAULT.check_address(address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.verdict(address) is None
    DEFAULT.check_address(address)


def test_allowed_networks_open_exceptions_and_nothing_else() -> None:
    policy = TargetPolicy(targets.parse_networks("127.0.0.0/8, fd00::/8,169.254.169.254"))
    for address in ("127.0.0.1", "127.255.0.9", "::ffff:127.0.0.1", "fd00::5", "169.254.169.254"):
        assert policy.verdict(address) is None, address
    for address in ("10.0.0.1", "::1", "fc00::1", "169.254.169.253"):
        assert policy.verdict(address) is not None, address
    assert policy.verdict("8.8.8.8") is None


def test_a_name_keeps_only_its_allowed_addresses_and_fails_without_one() -> None:
    assert DEFAULT.allowed_addresses("mixed.example", ["10.0.0.1", "8.8.8.8"]) == ["8.8.8.8"]
    with pytest.raises(TargetRefused, match=r"^evil\.example resolves to 127\.0\.0\.1, a loopback address"):
        DEFAULT.allowed_addresses("evil.example", ["127.0.0.1", "::1"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
        ("http://[::ffff:127.0.0.1]:8080/", "::ffff:127.0.0.1 is an IPv6 form of 127.0.0.1"),
        ("http://localhost:9/hook", "localhost resolves to 127.0.0.1, a loopback address"),
        ("http://127.1/", "127.1 resolves to 127.0.0.1, a loopback address"),
        ("http://host.invalid/", "the host host.invalid cannot be resolved"),
        ("http://example.com:99999/", "httpConfig.url: Port out of range"),
    ],
)
async def test_save_time_check_says_why(url: str, reason: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_dns(host: str, port: int, time_limit: float) -> list[str]:
        if host in ("localhost", "127.1"):  # resolved by the system without DNS
            return ["127.0.0.1"]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(targets, "_resolve", no_dns)
    with pytest.raises(Invalid) as caught:
        await DEFAULT.check_url(url)
    assert caught.value.message.startswith("httpConfig.url: ")
    assert reason in caught.value.message


async def test_save_time_check_passes_public_and_allowed_urls() -> None:
    await DEFAULT.check_url("https://8.8.8.8/hook")
    await TargetPolicy(targets.parse_networks("127.0.0.0/8")).check_url("http://localhost:9/hook")


async def test_require_https_refuses_plain_http() -> None:
    policy = TargetPolicy(require_https=True)
    with pytest.raises(Invalid, match="GATEWAY_REQUIRE_HTTPS"):
        await policy.check_url("http://8.8.8.8/")
    await policy.check_url("https://8.8.8.8/")


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]:9/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:9/hook", " is an IPv6 form of 127.0.0.1, a loopback address"),
        ("http://localhost:9/hook", "localhost resolves to 127.0.0.1, a loopback address"),
    ],
)
async def test_the_client_refuses_at_connect_time(url: str, refusal: str) -> None:
    """IP literals (which aiohttp does not resolve) and names alike; no server is needed,
    since nothing is connected to."""
    delivery = Delivery(url, {}, b"{}", DispatchMode.SYNC, False)
    async with http.open_outbound(4, DEFAULT) as client:
        outcome = await http.send(client, delivery, time_limit=5, max_bytes=1000)
    assert outcome.kind == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith(f"refused to deliver to {url}: ")
    assert refusal in outcome.error
    assert "GATEWAY_ALLOWED_TARGET_NETWORKS" in outcome.error


async def test_the_client_refuses_plain_http_when_https_is_required() -> None:
    async with http.open_outbound(4, TargetPolicy(require_https=True)) as client:
        with pytest.raises(TargetRefused, match="GATEWAY_REQUIRE_HTTPS"):
            await client.post("http://8.8.8.8/")


def test_refusal_is_found_behind_the_transports_wrapping() -> None:
    refused = TargetRefused("no")
    try:
        try:
            raise refused
        except TargetRefused as exc:
            raise OSError("wrapped") from exc
    except OSError as exc:
        try:
            raise httpx.ConnectError("mapped") from exc
        except httpx.ConnectError as outer:
            assert targets.refusal_in(outer) is refused
    assert targets.refusal_in(ValueError("other")) is None


def test_settings_parse_the_guards_settings() -> None:
    env = {"GATEWAY_ALLOWED_TARGET_NETWORKS": "10.0.0.0/8,fd00::/8", "GATEWAY_REQUIRE_HTTPS": "True"}
    settings = Settings.from_env(env)
    networks = targets.parse_networks(settings.allowed_target_networks)
    assert networks == (IPv4Network("10.0.0.0/8"), IPv6Network("fd00::/8"))
    assert settings.require_https is True
    for raw, value in [("1", True), ("yes", True), ("FALSE", False), ("no", False), ("0", False)]:
        assert Settings.from_env({"GATEWAY_REQUIRE_HTTPS": raw}).require_https is value
    assert Settings.from_env({}).require_https is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_REQUIRE_HTTPS": "maybe"}, "GATEWAY_REQUIRE_HTTPS must be true or false"),
        ({"GATEWAY_ALLOWED_TARGET_NETWORKS": "10.0.0.0/8,nope"}, "GATEWAY_ALLOWED_TARGET_NETWORKS: 'nope'"),
        ({"GATEWAY_ALLOWED_TARGET_NETWORKS": "10.0.0.1/8"}, "has host bits set"),
    ],
)
def test_bad_guard_settings_are_refused_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
