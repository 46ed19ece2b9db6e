"""Which addresses the gateway may call: the SSRF guard.

Subscribers are on the public internet, so by default only public addresses are called:
loopback, private, shared, link-local, multicast, unspecified, reserved and other
special-purpose addresses are refused, and so are IPv6 addresses that reach such an IPv4
address. An operator opens exceptions with GATEWAY_ALLOWED_TARGET_NETWORKS. The policy is
applied twice: when a subscription is saved (``check_url``, for a clear 400) and when a
delivery connects (adapters/outbound/http.py), after DNS resolution, since a name may resolve elsewhere by
then (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

from gateway.domain.errors import Invalid

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Save time only: a URL whose host does not resolve within this is refused.
RESOLVE_TIME_LIMIT = 5.0
HINT = (
    "the gateway only calls public addresses "
    "(an operator can allow networks with GATEWAY_ALLOWED_TARGET_NETWORKS)"
)
HTTPS_ONLY = "plain http is refused (GATEWAY_REQUIRE_HTTPS is set); use an https:// URL"

# First match wins: 0.0.0.0 is unspecified before it is "this network".
_KINDS: list[tuple[IPNetwork, str]] = [
    (ip_network(network), kind)
    for network, kind in [
        ("0.0.0.0/32", "an unspecified address"),
        ("0.0.0.0/8", "a 'this network' address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "a broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("fc00::/7", "a private (unique local) address"),
        ("ff00::/8", "a multicast address"),
    ]
]
NAT64 = IPv6Network("64:ff9b::/96")


class TargetRefused(OSError):
    """The policy refuses this address or URL. An OSError, so aiohttp treats it as a failed
    connection attempt: the delivery fails, and send() finds it in the cause chain."""


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """A comma-separated CIDR list; ValueError names the entry that is not one."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ip_network(item))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a network such as 10.0.0.0/8 ({exc})") from None
    return tuple(networks)


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def kind(address: IPAddress) -> str | None:
    """Why ``address`` is not public (e.g. "a loopback address"), or None when it is."""
    for network, name in _KINDS:
        if address in network:
            return name
    # Everything else the IANA special-purpose registries mark as not global: documentation,
    # benchmarking, IPv4-compatible, Teredo, ORCHID… (ipaddress knows them).
    if address.is_reserved or not address.is_global:
        return "a special-purpose address that is not publicly routable"
    return None


@dataclass(frozen=True)
class TargetPolicy:
    allowed: tuple[IPNetwork, ...] = ()
    require_https: bool = False

    def verdict(self, address: str) -> str | None:
        """None when the gateway may connect to ``address`` (an IP literal); else what it is,
        e.g. "a loopback address"."""
        try:
            ip = ip_address(address)
        except ValueError:
            return "not an IP address"
        v4 = embedded_ipv4(ip) if isinstance(ip, IPv6Address) else None
        if self._allows(ip) or (v4 is not None and self._allows(v4)):
            return None
        if v4 is not None:
            # Judged by the IPv4 address it reaches: a public NAT64 or 6to4 target is fine.
            reason = kind(v4)
            return None if reason is None else f"an IPv6 form of {v4}, {reason}"
        return kind(ip)

    def _allows(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.allowed)

    def check_address(self, address: str) -> None:
        """For an IP literal, or the address a connection is about to be made to."""
        verdict = self.verdict(address)
        if verdict is not None:
            raise TargetRefused(f"{address} is {verdict}; {HINT}")

    def allowed_addresses(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses ``host`` resolved to that may be called; TargetRefused when none may."""
        addresses = list(addresses)
        allowed = [address for address in addresses if self.verdict(address) is None]
        if addresses and not allowed:
            raise TargetRefused(f"{host} resolves to {addresses[0]}, {self.verdict(addresses[0])}; {HINT}")
        return allowed

    def check_scheme(self, scheme: str) -> None:
        if self.require_https and scheme != "https":
            raise TargetRefused(HTTPS_ONLY)

    async def check_url(self, url: str, *, time_limit: float = RESOLVE_TIME_LIMIT) -> None:
        """At save time: Invalid (400) saying why ``url`` may not be called. Resolves the host,
        so call it outside database transactions."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise Invalid(f"httpConfig.url: {exc}") from None
        try:
            self.check_scheme(parts.scheme)
            if _is_ip_literal(host):
                self.check_address(host)
            else:
                self.allowed_addresses(host, await _resolve(host, port, time_limit))
        except TargetRefused as exc:
            raise Invalid(f"httpConfig.url: {exc}") from None
        except (OSError, UnicodeError):  # TimeoutError is an OSError too
            raise Invalid(f"httpConfig.url: the host {host} cannot be resolved") from None


def _is_ip_literal(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str, port: int, time_limit: float) -> list[str]:
    async with asyncio.timeout(time_limit):
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def refusal_in(exc: BaseException) -> TargetRefused | None:
    """The TargetRefused behind ``exc`` (httpx and aiohttp wrap it), if any."""
    seen: BaseException | None = exc
    for _ in range(10):  # the chain is short; a bound guards against cycles
        if seen is None:
            return None
        if isinstance(seen, TargetRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
