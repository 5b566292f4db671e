"""Which Host headers a worker answers: its own addresses and names, never a name an attacker controls.

A web page can point a name it owns at this machine (DNS rebinding) and then send requests that carry that name
in Host; refusing every Host that is not the worker's own stops that. A worker bound to one address answers
that address (plus `localhost` on loopback). A worker bound to a wildcard (`0.0.0.0`, `::`) is reached through
any of the machine's addresses, so it answers the address the connection actually arrived on (an IP literal
cannot be rebound), the machine's own host names, and whatever `--allow-host` adds (a DNS name or the address
a port forward or NAT exposes).
"""

from __future__ import annotations

import ipaddress
import socket

WILDCARDS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def normalise_address(address: str) -> str:
    """An IP as a Host header writes it: IPv4-mapped IPv6 (a dual-stack socket's view of IPv4) as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header's (host, port); None when it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1:]
    else:
        host, _, port = value.partition(":")
        rest = f":{port}" if _ else ""
    if rest and (not rest.startswith(":") or not rest[1:].isdigit()):
        return None
    return host, int(rest[1:]) if rest else None


def machine_names() -> set[str]:
    """This machine's host name, lower case (no DNS lookup: start-up must not wait for a resolver)."""
    try:
        name = socket.gethostname().strip().lower().rstrip(".")
    except OSError:
        return set()
    return {name, name.split(".", 1)[0]} if name else set()


class HostPolicy:
    """Decides whether a request's Host header names this worker (`allows`)."""

    def __init__(self, bound_host: str, port: int, allow: list[str] | tuple[str, ...] = ()) -> None:
        self.bound_host = bound_host
        self.port = port
        self.wildcard = bound_host in WILDCARDS
        names = {normalise_address(bound_host)} if not self.wildcard else set()
        if is_loopback(bound_host):
            names |= {"localhost", "127.0.0.1"} if ":" not in bound_host else {"localhost"}
        if self.wildcard:
            names |= machine_names()
        for extra in allow:
            parsed = split_host(extra)
            if parsed is None or not parsed[0]:
                raise ValueError(f"--allow-host {extra!r} is not a host name or address.")
            names.add(normalise_address(parsed[0]))
        self.names = frozenset(names)

    def allows(self, host_header: str, local_address: str | None = None) -> bool:
        """Whether `host_header` (as sent) names this worker; `local_address` is the address the connection
        arrived on (scope["server"][0]), used for wildcard binds."""
        parsed = split_host(host_header)
        if parsed is None:
            return False
        host, port = parsed
        if port != self.port:
            return False
        host = normalise_address(host)
        if host in self.names:
            return True
        if self.wildcard and local_address is not None:
            local = normalise_address(local_address)
            if host == local or (host == "localhost" and is_loopback(local)):
                return True
        return False

    def ready_url(self) -> str:
        """A URL a client can use: the bound address, or for a wildcard bind this machine's outward address."""
        if not self.wildcard:
            return f"http://{_bracket(self.bound_host)}:{self.port}"
        return f"http://{_bracket(outward_address(self.bound_host))}:{self.port}"


def outward_address(bound_host: str) -> str:
    """The address other machines most likely reach this one at (the one the default route leaves from); the
    loopback address when there is no route. No packet is sent: connecting a UDP socket only picks a route."""
    probes = [(socket.AF_INET, "192.0.2.1")]  # TEST-NET-1, IPv6's documentation prefix below: never contacted
    if bound_host == "::":
        probes.insert(0, (socket.AF_INET6, "2001:db8::1"))
    for family, probe in probes:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                return normalise_address(sock.getsockname()[0])
        except OSError:
            continue
    return "127.0.0.1"
