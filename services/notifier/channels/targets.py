"""Where webhooks may go: public addresses, plus the networks an operator allows explicitly.

Webhook URLs are typed by resellers' staff, so they must not reach what only Backstop's own
network can: the cloud metadata service, the ops port, databases on private addresses. The rule
is applied twice: to the URL when an endpoint is added (a clear error for the operator), and to
every address the host resolves to when a connection is opened (see :mod:`egress`), which is
what counts: a name may resolve differently later (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that are internal wherever Backstop runs, whatever DNS says about them.
_LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
_METADATA = (ipaddress.ip_address("169.254.169.254"),)
INTERNAL_NAMES: dict[str, tuple[Address, ...]] = {
    "localhost": _LOOPBACK,
    "metadata": _METADATA,
    "metadata.google.internal": _METADATA,
    "metadata.goog": _METADATA,
    "instance-data": _METADATA,
    "instance-data.ec2.internal": _METADATA,
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(ValueError):
    """The URL or an address it resolves to is not a permitted webhook target."""


@dataclass(frozen=True)
class TargetPolicy:
    allow: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TargetPolicy:
        """From ``BACKSTOP_WEBHOOK_ALLOW_NETWORKS``: CIDRs or addresses, comma-separated."""
        networks = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"not a network: {item!r} (e.g. 10.1.2.0/24)") from exc
        return cls(tuple(networks))

    def permits(self, address: Address) -> bool:
        if any(address in net for net in self.allow if net.version == address.version):
            return True
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return self.permits(embedded)
        return address.is_global and not address.is_multicast

    def check_addresses(self, addresses: Iterable[Address]) -> None:
        if not all(self.permits(a) for a in addresses):
            raise TargetRefused("target address not allowed")


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def literal_address(host: str) -> Address | None:
    """The address a host names without DNS: dotted, decimal, hex and octal IPv4 forms too,
    as the C resolver reads them (``2130706433``, ``0x7f.1``, ``0177.0.0.1`` are 127.0.0.1)."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def internal_name(host: str) -> tuple[Address, ...] | None:
    name = host.rstrip(".").lower()
    if name.endswith(".localhost"):
        return _LOOPBACK
    return INTERNAL_NAMES.get(name)


def check_url(url: str, policy: TargetPolicy) -> None:
    """At configuration time: an http(s) URL, without credentials, not naming an internal
    address (names are checked again, resolved, at every connection)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetRefused("not an http(s) URL")
    if parsed.userinfo:
        raise TargetRefused("user:password@ in a webhook URL is not allowed; most receivers "
                            "take a token in a header or the query instead")
    literal = literal_address(parsed.host)
    addresses = (literal,) if literal is not None else internal_name(parsed.host)
    if addresses is not None and not all(policy.permits(a) for a in addresses):
        raise TargetRefused(
            f"{parsed.host} is a loopback, private, link-local or metadata address; allow "
            "its network in BACKSTOP_WEBHOOK_ALLOW_NETWORKS if it really is the receiver")
