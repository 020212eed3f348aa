# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Consul's membership and the swarm's node list side by side: one implementation for every user.

The modules swarm_consistency and swarm_reconcile, the reconciler service on
the managers (roles/swarm_manager/files/picluster-reconcile.py) and the
dashboard all judge a node with these functions. The service and the
dashboard ship this file beside themselves, so it is standard library only
and imports nothing from the collection.

Nothing here talks to Consul or Docker. The inputs are member records as
``_membership.collect_members`` returns them and node objects as the Docker
engine API's ``GET /nodes`` returns them; the outputs are plain dicts.

Categories (each node is in exactly one):

* ``healthy``: alive (or expiring) in Consul and Ready in the swarm;
* ``swarm_down``: alive in Consul, not Ready in the swarm (Down, Unknown, Disconnected);
* ``consul_expired``: Ready in the swarm, but the registration Consul holds for it expired;
* ``consul_only``: registered in Consul (alive or expired), no swarm node has that address;
* ``swarm_only``: Ready in the swarm, and Consul holds no registration for it;
* ``down``: not Ready in the swarm and expired or not registered in Consul: both agree it is gone.

Plus two flags across categories: ``duplicate`` (two registrations for one
address or host name, in Consul or in the swarm) and ``stale`` (not Ready in
the swarm for longer than ``stale_after``).
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

CATEGORIES = ("healthy", "swarm_down", "consul_expired", "consul_only", "swarm_only", "down")
# Where Consul and the swarm tell different stories.
DISAGREEMENTS = ("swarm_down", "consul_expired", "consul_only", "swarm_only")
LIVE_STATES = ("alive", "expiring")
DEFAULT_STALE_AFTER = 3600.0
DEFAULT_GRACE_PERIOD = 10.0
# Put on a node the reconciler drained (value: when, ISO 8601 UTC). Only nodes
# that carry it are set active again: a drain an operator made is left alone.
RECONCILE_LABEL = "io.picluster.reconcile.drained"

# Options of both modules; the doc fragment picluster.swarm.consistency documents them, once.
COMPARE_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "stale_after": {"type": "float", "default": DEFAULT_STALE_AFTER},
}


# -- the swarm's node objects ---------------------------------------------------


def parse_docker_time(text: Any) -> Optional[float]:
    """Epoch seconds from Docker's RFC 3339 times (nanoseconds; Python takes microseconds)."""
    if not isinstance(text, str) or not text or text.startswith("0001-"):
        return None
    body = text.rstrip("Z")
    offset = "+00:00" if text.endswith("Z") else ""
    if "." in body:
        head, frac = body.split(".", 1)
        digits = "".join(ch for ch in frac if ch.isdigit())
        rest = frac[len(digits):]
        body = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        moment = datetime.fromisoformat(body + offset)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def iso_time(epoch: Optional[float]) -> Optional[str]:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_address(node: Mapping[str, Any]) -> str:
    """The node's IP; a manager may report 0.0.0.0 in Status.Addr, its raft address has the real one."""
    addr = str((node.get("Status") or {}).get("Addr") or "")
    if addr in ("", "0.0.0.0"):
        addr = str((node.get("ManagerStatus") or {}).get("Addr") or "").rsplit(":", 1)[0]
    return addr


def swarm_node_record(node: Mapping[str, Any], now: float) -> Dict[str, Any]:
    """A node of ``GET /nodes`` as the plain record every user of this file reads.

    ``down_for`` counts from the node's UpdatedAt: the swarm rewrites a node
    when its status changes, so for a node that is not Ready it is when it
    went Down, or later if its spec changed since (a drain): never more than
    the truth.
    """
    spec = node.get("Spec") or {}
    desc = node.get("Description") or {}
    engine = desc.get("Engine") or {}
    manager = node.get("ManagerStatus") or {}
    status = node.get("Status") or {}
    state = str(status.get("State") or "unknown")
    updated = parse_docker_time(node.get("UpdatedAt"))
    labels = dict(spec.get("Labels") or {})
    return {
        "id": node.get("ID", ""),
        "version": (node.get("Version") or {}).get("Index"),
        "hostname": desc.get("Hostname", ""),
        "address": node_address(node),
        "role": spec.get("Role", ""),
        "availability": spec.get("Availability", ""),
        "status": state,
        "message": status.get("Message", ""),
        "leader": bool(manager.get("Leader")),
        "reachability": manager.get("Reachability", ""),
        "engine_version": engine.get("EngineVersion", ""),
        "labels": labels,
        "engine_labels": dict(engine.get("Labels") or {}),
        "architecture": (desc.get("Platform") or {}).get("Architecture", ""),
        "updated_at": iso_time(updated),
        "down_for": None if state == "ready" or updated is None else round(max(0.0, now - updated), 1),
        "drained_by_reconcile": RECONCILE_LABEL in labels,
    }


def managers_of(nodes: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    return [n for n in nodes if n.get("role") == "manager"]


# -- one node: a Consul member and a swarm node -----------------------------------


def is_live(member: Optional[Mapping[str, Any]]) -> bool:
    return member is not None and member.get("state") in LIVE_STATES


def classify_pair(member: Optional[Mapping[str, Any]], swarm: Optional[Mapping[str, Any]]) -> str:
    """The category of one node from its Consul member record and its swarm record (either may be None)."""
    if member is None and swarm is None:
        raise ValueError("a node needs a Consul member or a swarm node")
    ready = swarm is not None and swarm.get("status") == "ready"
    if swarm is None:
        return "consul_only"
    if member is None:
        return "swarm_only" if ready else "down"
    if is_live(member):
        return "healthy" if ready else "swarm_down"
    return "consul_expired" if ready else "down"


def gone_for(member: Optional[Mapping[str, Any]], swarm: Optional[Mapping[str, Any]]) -> Optional[float]:
    """How long the evidence says the node has been gone, None when there is none.

    A registration Consul still holds dates its own expiry (last heartbeat
    plus TTL). Once Consul deleted it (up to twice the TTL after the last
    heartbeat, or at once when the node's Consul agent fails), the only clock
    left is the swarm's: how long it has seen the node not Ready. A node the
    swarm sees Ready with no registration at all has no evidence against it:
    that is also what a node without a heartbeat looks like.
    """
    candidates = []
    if member is not None and not is_live(member):
        age = member.get("seconds_since_heartbeat")
        ttl = member.get("ttl") or 0
        if age is not None:
            candidates.append(max(0.0, float(age) - float(ttl)))
    if swarm is not None and swarm.get("down_for") is not None:
        candidates.append(float(swarm["down_for"]))
    return round(max(candidates), 1) if candidates else None


def _seconds(value: Optional[float]) -> str:
    return "?" if value is None else f"{value:.0f} s"


def _name(member: Optional[Mapping[str, Any]], swarm: Optional[Mapping[str, Any]]) -> str:
    return str((swarm or {}).get("hostname") or (member or {}).get("hostname") or (member or {}).get("ip") or "")


def _expiry_words(member: Mapping[str, Any]) -> str:
    if not member.get("session"):
        return "its registration in Consul is held by no session"
    age = member.get("seconds_since_heartbeat")
    if age is None:
        return "its registration in Consul lost its session"
    return f"its registration in Consul expired (last heartbeat {_seconds(age)} ago, TTL {member.get('ttl')} s)"


def describe(entry: Mapping[str, Any]) -> str:
    """One line: what is wrong with the node and what to do about it."""
    member, swarm = entry.get("consul"), entry.get("swarm")
    who = f"{entry['name']} ({entry['address']})" if entry["name"] != entry["address"] else entry["address"]
    category = entry["category"]
    if category == "healthy":
        text = f"{who}: alive in Consul and Ready in the swarm"
        if swarm and swarm.get("availability") != "active":
            how = "by swarm_reconcile" if swarm.get("drained_by_reconcile") else "by hand"
            text += f" ({swarm.get('availability')}, set {how})"
        return text
    if category == "swarm_down":
        return (f"{who}: alive in Consul but {swarm['status']} in the swarm: its engine does not reach the managers "
                "while its heartbeat does; check `systemctl status docker` on it")
    if category == "consul_expired":
        return (f"{who}: Ready in the swarm but {_expiry_words(member)}: its heartbeat does not get through; "
                "check `systemctl status picluster-heartbeat` and the Consul agent on it "
                "(swarm_reconcile drains it once the grace period is over)")
    if category == "consul_only":
        if is_live(member):
            return (f"{who}: alive in Consul ({member['address']}) but not in the swarm: it announces itself "
                    "without having joined; run the swarm_agent role for it, or stop its heartbeat if it left")
        forever = "" if member.get("session") else "; Consul never drops a key no session holds"
        return (f"{who}: a registration in Consul ({member['address']}) for an address the swarm does not know, "
                f"expired{forever}: remove it with picluster.swarm.swarm_registration "
                f"address={member['address']} state=absent")
    if category == "swarm_only":
        return (f"{who}: Ready in the swarm but not registered in Consul: its heartbeat is not running (stopped, "
                "never installed, or Consul lost the key); run the swarm_agent role for it or "
                "`systemctl start picluster-heartbeat` on it")
    consul_words = _expiry_words(member) if member else "it is not registered in Consul"
    down_for = _seconds(swarm.get("down_for"))
    text = f"{who}: gone from both: {swarm['status']} in the swarm for {down_for}, {consul_words}"
    if entry.get("stale"):
        return (f"{text}; stale (longer than stale_after): start it again, or remove it: "
                f"`docker node rm {swarm['id']}` or swarm_reconcile remove_after")
    return f"{text}; start it again (swarm_reconcile drains it meanwhile)"


def _consul_view(member: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if member is None:
        return None
    fields = ("address", "hostname", "role", "state", "seconds_since_heartbeat", "seconds_left", "ttl", "session",
              "key")
    return {name: member.get(name) for name in fields}


def _swarm_view(swarm: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if swarm is None:
        return None
    fields = ("id", "version", "hostname", "role", "status", "availability", "message", "leader", "reachability",
              "engine_version", "updated_at", "down_for", "drained_by_reconcile")
    return {name: swarm.get(name) for name in fields}


def build_entry(
    member: Optional[Mapping[str, Any]],
    swarm: Optional[Mapping[str, Any]],
    *,
    stale_after: float = DEFAULT_STALE_AFTER,
    duplicate: bool = False,
) -> Dict[str, Any]:
    """One node of the report: its category, both views, the flags and the one-line summary."""
    category = classify_pair(member, swarm)
    address = str((swarm or {}).get("address") or (member or {}).get("ip") or "")
    down_for = (swarm or {}).get("down_for")
    entry: Dict[str, Any] = {
        "name": _name(member, swarm) or address,
        "address": address,
        "category": category,
        "gone_for": gone_for(member, swarm),
        "duplicate": duplicate,
        "stale": down_for is not None and down_for >= stale_after,
        "consul": _consul_view(member),
        "swarm": _swarm_view(swarm),
    }
    entry["problem"] = category != "healthy" or duplicate or entry["stale"]
    entry["summary"] = describe(entry)
    return entry


# -- the whole cluster -------------------------------------------------------------------


def _member_rank(member: Mapping[str, Any]) -> Tuple[int, float]:
    live = 0 if is_live(member) else 1
    return live, -float(member.get("heartbeat") or 0.0)


def _by_preference(swarm_nodes: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """Ready records first, the newest first among equals (UpdatedAt is ISO 8601: it sorts as text)."""
    newest_first = sorted(swarm_nodes, key=lambda n: str(n.get("updated_at") or ""), reverse=True)
    return sorted(newest_first, key=lambda n: n.get("status") != "ready")


def _duplicates(
    members: Sequence[Mapping[str, Any]], swarm_nodes: Sequence[Mapping[str, Any]]
) -> List[Dict[str, Any]]:
    found: List[Dict[str, Any]] = []

    def grouped(items: Sequence[Mapping[str, Any]], field: str) -> Dict[str, List[Mapping[str, Any]]]:
        groups: Dict[str, List[Mapping[str, Any]]] = {}
        for item in items:
            if item.get(field):
                groups.setdefault(str(item[field]), []).append(item)
        return {k: v for k, v in groups.items() if len(v) > 1}

    for ip, group in grouped(members, "ip").items():
        addresses = ", ".join(m["address"] for m in group)
        found.append({"kind": "consul_address", "value": ip, "records": [m["address"] for m in group],
                      "summary": f"{ip}: registered {len(group)} times in Consul ({addresses}): the node's engine "
                                 "port changed, or two nodes share the address; remove the old one with "
                                 "picluster.swarm.swarm_registration state=absent"})
    for name, group in grouped(members, "hostname").items():
        if len({m["ip"] for m in group}) < 2:
            continue  # already reported by address
        addresses = ", ".join(m["address"] for m in group)
        found.append({"kind": "consul_hostname", "value": name, "records": [m["address"] for m in group],
                      "summary": f"{name}: registered in Consul under {len(group)} addresses ({addresses}): it "
                                 "changed address, or two nodes share a host name; remove the old registration "
                                 "with picluster.swarm.swarm_registration state=absent"})
    for field, kind in (("address", "swarm_address"), ("hostname", "swarm_hostname")):
        for value, group in grouped(swarm_nodes, field).items():
            if kind == "swarm_hostname" and len({n["address"] for n in group}) < 2:
                continue  # same address too: one finding is enough
            records = ", ".join(f"{n['id'][:12]} {n['status']}" for n in group)
            gone = [n["id"][:12] for n in group if n.get("status") != "ready"]
            fix = f"remove the one(s) not Ready: docker node rm {' '.join(gone)}" if gone else \
                "two machines answer for one name or address; give each its own"
            found.append({"kind": kind, "value": value, "records": [n["id"] for n in group],
                          "summary": f"{value}: {len(group)} swarm nodes ({records}): the node joined again and "
                                     f"left its old record behind, or two machines share it; {fix}"})
    return found


def compare(
    members: Sequence[Mapping[str, Any]],
    swarm_nodes: Sequence[Mapping[str, Any]],
    *,
    stale_after: float = DEFAULT_STALE_AFTER,
) -> Dict[str, Any]:
    """Match Consul members and swarm records by IP address and report on every node.

    ``members`` are ``_membership.collect_members`` records; ``swarm_nodes``
    are ``swarm_node_record`` records. When several records share an address,
    the live member and the Ready (then newest) swarm record are paired, and
    every other record is an entry of its own, flagged ``duplicate``.
    """
    by_ip: Dict[str, Dict[str, List[Mapping[str, Any]]]] = {}
    for member in members:
        by_ip.setdefault(str(member.get("ip") or ""), {"consul": [], "swarm": []})["consul"].append(member)
    for swarm in swarm_nodes:
        by_ip.setdefault(str(swarm.get("address") or ""), {"consul": [], "swarm": []})["swarm"].append(swarm)

    entries: List[Dict[str, Any]] = []
    for _ip, sides in sorted(by_ip.items(), key=lambda item: _ip_order(item[0])):
        consul_side = sorted(sides["consul"], key=_member_rank)
        swarm_side = _by_preference(sides["swarm"])
        duplicate = len(consul_side) > 1 or len(swarm_side) > 1
        first_member = consul_side[0] if consul_side else None
        first_swarm = swarm_side[0] if swarm_side else None
        entries.append(build_entry(first_member, first_swarm, stale_after=stale_after, duplicate=duplicate))
        for extra in consul_side[1:]:
            entries.append(build_entry(extra, None, stale_after=stale_after, duplicate=True))
        for extra_node in swarm_side[1:]:
            entries.append(build_entry(None, extra_node, stale_after=stale_after, duplicate=True))

    duplicates = _duplicates(members, swarm_nodes)
    hostname_dups = {d["value"] for d in duplicates if d["kind"] in ("consul_hostname", "swarm_hostname")}
    for entry in entries:
        if entry["name"] in hostname_dups and not entry["duplicate"]:
            entry["duplicate"] = entry["problem"] = True
    counts = {"total": len(entries), **{c: sum(1 for e in entries if e["category"] == c) for c in CATEGORIES}}
    counts["duplicates"] = len(duplicates)
    counts["stale"] = sum(1 for e in entries if e["stale"])
    # A healthy node flagged duplicate is explained by its duplicate's finding.
    problems = [e["summary"] for e in entries if e["category"] != "healthy" or e["stale"]]
    problems += [d["summary"] for d in duplicates]
    counts["problems"] = len(problems)
    managers = managers_of(swarm_nodes)
    return {
        "nodes": entries,
        "counts": counts,
        "problems": problems,
        "duplicates": duplicates,
        "stale": [e["name"] for e in entries if e["stale"]],
        "in_sync": not any(e["category"] in DISAGREEMENTS for e in entries) and not duplicates,
        "all_healthy": all(e["category"] == "healthy" for e in entries) and not duplicates and bool(entries),
        "managers": {
            "total": len(managers),
            "reachable": sum(1 for m in managers if m.get("reachability") == "reachable"),
            "leader": next((m["hostname"] for m in managers if m.get("leader")), ""),
        },
    }


def _ip_order(ip: str) -> Tuple[int, Tuple[int, ...], str]:
    try:
        return 0, tuple(int(part) for part in ip.split(".")), ip
    except ValueError:
        return 1, (), ip


# -- the reconciler's plan ------------------------------------------------------------------


def check_periods(grace_period: Any, remove_after: Any) -> Optional[str]:
    """A message when the periods cannot be used, else None."""
    if not isinstance(grace_period, (int, float)) or isinstance(grace_period, bool) or grace_period <= 0:
        return (f"grace_period must be a positive number of seconds, got {grace_period!r}: a node must stay expired "
                "that long before it is drained (a few seconds to one TTL; 10 is the default)")
    if remove_after is not None and remove_after != 0:
        if not isinstance(remove_after, (int, float)) or isinstance(remove_after, bool) or remove_after < 0:
            return f"remove_after must be 0 (never remove) or a positive number of seconds, got {remove_after!r}"
        if remove_after <= grace_period:
            return (f"remove_after ({remove_after} s) must be longer than grace_period ({grace_period} s): a node "
                    "is drained first and removed only after it stayed gone")
    return None


def quorum_refusal(candidate: Mapping[str, Any], managers: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """Why removing this manager would hurt the swarm's raft, or None when it is safe.

    ``managers`` are the swarm records of every manager (the candidate among
    them). Never the last manager; never one raft still reaches; never when
    the managers that stay and are reachable would be fewer than a majority
    of the managers that stay.
    """
    if candidate.get("role") != "manager":
        return None
    total = len(managers)
    if total <= 1:
        return "it is the swarm's last manager"
    if candidate.get("reachability") == "reachable":
        return "raft still reaches it (it is a working manager, whatever its node status says)"
    reachable_others = sum(
        1 for m in managers if m.get("id") != candidate.get("id") and m.get("reachability") == "reachable"
    )
    quorum_after = (total - 1) // 2 + 1
    if reachable_others < quorum_after:
        return (f"the {total - 1} managers left would have {reachable_others} reachable, fewer than their quorum "
                f"of {quorum_after}")
    return None


def _action(kind: str, entry: Mapping[str, Any], reason: str, **change: Any) -> Dict[str, Any]:
    swarm = entry["swarm"]
    return {
        "action": kind,
        "node": entry["name"],
        "address": entry["address"],
        "id": swarm["id"],
        "role": swarm["role"],
        "category": entry["category"],
        "reason": reason,
        "change": dict(change),
    }


def _held(entry: Mapping[str, Any], would: str, reason: str) -> Dict[str, Any]:
    return {"node": entry["name"], "address": entry["address"], "would": would, "reason": reason}


def plan(
    report: Mapping[str, Any],
    *,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    remove_after: float = 0,
    now: Optional[float] = None,
) -> Dict[str, Any]:
    """What the reconciler does about a report, and what it holds back and why.

    * drain (and label) a node expired in Consul (``consul_expired``) or gone
      from both (``down``) for longer than ``grace_period``;
    * set active again (and unlabel) a node it drained once it is alive in
      Consul and Ready in the swarm;
    * with ``remove_after`` > 0, remove a swarm node gone from both for longer
      than that (a manager only if ``quorum_refusal`` allows it).

    Safety: a node Ready in the swarm with no registration at all is never
    touched (a node without a heartbeat looks exactly like that), and when
    Consul calls half or more of the Ready nodes expired, none of them is
    drained: Consul or the network is the likelier culprit.
    """
    message = check_periods(grace_period, remove_after)
    if message:
        raise ValueError(message)
    stamp = iso_time(time.time() if now is None else now)
    actions: List[Dict[str, Any]] = []
    held: List[Dict[str, Any]] = []
    entries = [e for e in report["nodes"] if e.get("swarm")]
    ready_count = sum(1 for e in entries if e["swarm"]["status"] == "ready")
    managers = [dict(e["swarm"]) for e in entries if e["swarm"]["role"] == "manager"]
    drains: List[Dict[str, Any]] = []
    for entry in entries:
        swarm = entry["swarm"]
        category, gone = entry["category"], entry["gone_for"]
        if category in ("consul_expired", "down"):
            if remove_after and category == "down" and gone is not None and gone >= remove_after:
                refusal = quorum_refusal(swarm, managers)
                if refusal:
                    held.append(_held(entry, "remove", f"a manager is not removed when {refusal}"))
                else:
                    managers = [m for m in managers if m["id"] != swarm["id"]]
                    actions.append(_action("remove", entry, f"gone for {_seconds(gone)}, remove_after "
                                                            f"{_seconds(remove_after)}", present=False))
                    continue
            if swarm["availability"] == "drain":
                continue
            if gone is None:
                held.append(_held(entry, "drain", "no time tells how long it has been gone"))
            elif gone < grace_period:
                held.append(_held(entry, "drain", f"gone for {_seconds(gone)}, grace period "
                                                  f"{_seconds(grace_period)}"))
            else:
                drains.append(_action("drain", entry, f"{category}: gone for {_seconds(gone)}, grace period "
                                                      f"{_seconds(grace_period)}",
                                      availability="drain", label=stamp))
        elif category == "healthy" and swarm["drained_by_reconcile"]:
            member_state = (entry.get("consul") or {}).get("state")
            if member_state != "alive":
                held.append(_held(entry, "activate", f"{member_state} in Consul: waits until alive"))
            elif swarm["availability"] == "active":
                actions.append(_action("activate", entry, "active again by hand: the reconciler's label goes",
                                       label=None))
            else:
                actions.append(_action("activate", entry, "alive in Consul and Ready in the swarm again",
                                       availability="active", label=None))
    ready_drains = [a for a in drains if a["category"] == "consul_expired"]
    if ready_drains and 2 * len(ready_drains) >= ready_count:
        for action in ready_drains:
            held.append({"node": action["node"], "address": action["address"], "would": "drain",
                         "reason": f"Consul calls {len(ready_drains)} of the {ready_count} Ready nodes expired: "
                                   "more likely Consul or the network is at fault than the nodes; nothing is "
                                   "drained on Consul's word alone for half the swarm or more"})
        drains = [a for a in drains if a["category"] != "consul_expired"]
    actions.extend(drains)
    actions.sort(key=lambda a: ({"drain": 0, "activate": 1, "remove": 2}[a["action"]], _ip_order(a["address"])))
    return {"actions": actions, "held": held}


def node_state(swarm: Mapping[str, Any]) -> Dict[str, Any]:
    """What the diff shows of a node: the fields the reconciler may change."""
    labels = swarm.get("labels") or {}
    return {"availability": swarm.get("availability"), RECONCILE_LABEL: labels.get(RECONCILE_LABEL)}


def diff(actions: Sequence[Mapping[str, Any]], swarm_nodes: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """before/after of every node an action touches, keyed 'hostname (address, id)'."""
    by_id = {n["id"]: n for n in swarm_nodes}
    before: Dict[str, Any] = {}
    after: Dict[str, Any] = {}
    for action in actions:
        node = by_id.get(action["id"], {})
        key = f"{action['node']} ({action['address']}, {action['id'][:12]})"
        before[key] = node_state(node)
        if action["action"] == "remove":
            continue  # absent from after: removed
        state = dict(before[key])
        if "availability" in action["change"]:
            state["availability"] = action["change"]["availability"]
        state[RECONCILE_LABEL] = action["change"].get("label")
        after[key] = state
    return {"before": before, "after": after,
            "before_header": "swarm nodes (as read)", "after_header": "swarm nodes (after swarm_reconcile)"}


def apply_change(spec: Mapping[str, Any], action: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The node spec an update action wants, or None when the spec already is that way."""
    wanted = copy.deepcopy(dict(spec))
    labels = dict(wanted.get("Labels") or {})
    change = action["change"]
    if "availability" in change:
        wanted["Availability"] = change["availability"]
    if change.get("label"):
        labels.setdefault(RECONCILE_LABEL, change["label"])
    else:
        labels.pop(RECONCILE_LABEL, None)
    wanted["Labels"] = labels
    if wanted.get("Availability") == spec.get("Availability") and labels == dict(spec.get("Labels") or {}):
        return None
    return wanted
