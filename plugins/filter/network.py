# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Address checks the vip role makes before it changes anything.

With the standard library's ``ipaddress``: the controller needs no netaddr
(ansible.utils' ipaddr filters do).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Dict, List, Mapping


def vip_errors(vip: Any, interfaces: Any) -> List[str]:
    """Reasons why ``vip`` cannot float between the hosts of ``interfaces``.

    ``interfaces`` is a list of ``{host, address, prefix}`` (the interface each
    host would carry the address on). An empty list means the address is fine:
    an IPv4 address inside every host's network, none of the hosts' own
    addresses, and neither the network's nor its broadcast address.
    """
    problems: List[str] = []
    try:
        address = ipaddress.IPv4Address(str(vip).strip())
    except ValueError:
        return [f"'{vip}' is not an IPv4 address"]
    outside: Dict[str, List[str]] = {}
    for item in interfaces or []:
        entry: Mapping[str, Any] = item if isinstance(item, Mapping) else {}
        host = str(entry.get("host", "?"))
        try:
            network = ipaddress.IPv4Interface(f"{entry.get('address')}/{entry.get('prefix')}").network
        except ValueError:
            problems.append(f"{host}: no IPv4 network is known for it (address {entry.get('address')!r}, "
                            f"prefix {entry.get('prefix')!r})")
            continue
        if address == ipaddress.IPv4Address(str(entry.get("address"))):
            problems.append(f"{address} is {host}'s own address; pick a free address for the VIP")
        elif address not in network:
            outside.setdefault(str(network), []).append(host)
        elif network.prefixlen < 31 and address in (network.network_address, network.broadcast_address):
            problems.append(f"{address} is the network or broadcast address of {network}")
    for network_text, hosts in outside.items():
        problems.append(f"{address} is outside the network {network_text} of {', '.join(hosts)}; VRRP moves an "
                        "address only within one network, so pick a free address in it")
    return problems


def vrrp_router_id(vip: Any) -> int:
    """A virtual router id (1-255) derived from the address, stable across runs."""
    try:
        packed = int(ipaddress.IPv4Address(str(vip).strip()))
    except ValueError:
        return 1
    return packed % 255 + 1


class FilterModule:
    """picluster.swarm network filters."""

    def filters(self) -> Dict[str, Any]:
        return {"vip_errors": vip_errors, "vrrp_router_id": vrrp_router_id}
