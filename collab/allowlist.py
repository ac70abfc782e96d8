"""Address allow-lists for the operator's endpoints (COLLAB_METRICS_ALLOW, COLLAB_HEALTH_ALLOW).

Loopback is always allowed: the monitoring agent on the same host needs no setting. Entries are IP
addresses or CIDR networks; a malformed entry stops the server at start-up naming the setting, rather
than silently opening (or closing) the endpoint. The address checked is `request.remote_addr`, which is
the client's only behind COLLAB_TRUSTED_PROXIES (collab/__init__.py): a forged X-Forwarded-For from the
internet is not believed.
"""
from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse(setting: str, text: str | None) -> tuple[Network, ...]:
    """The networks listed in `text` (comma-separated); ValueError naming `setting` for a bad entry."""
    nets = []
    for raw in (text or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{setting}: {entry[:60]!r} is not an IP address or network (e.g. 10.0.0.0/8).") from None
    return tuple(nets)


def allowed(remote_addr: str | None, nets: tuple[Network, ...], *, via_untrusted_proxy: bool = False) -> bool:
    """Loopback, or an address inside one of `nets`. `via_untrusted_proxy`: the request names a client in
    forwarding headers that are not believed (COLLAB_TRUSTED_PROXIES=0), so the peer is a reverse proxy on
    this host and its loopback address says nothing about the client: loopback does not count then."""
    try:
        addr = ipaddress.ip_address((remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    if getattr(addr, "ipv4_mapped", None):
        addr = addr.ipv4_mapped
    return (addr.is_loopback and not via_untrusted_proxy) or any(addr in net for net in nets)
