# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Swarm membership as stored in Consul: one implementation for every plugin.

Layout (classic swarm's): the key ``<prefix>/<ip>:<port>`` (default prefix
``docker/swarm/nodes``) is held by a Consul session with a TTL (behaviour
``delete``), and its value is a small JSON document (see :func:`build_document`).
The node-side heartbeat (roles/swarm_agent/files/picluster-heartbeat.py)
imports this file, installed beside it by the swarm_agent role: keep it to the
Python standard library.

Nothing here talks to Consul: these functions take what Consul returned (a
recursive KV read and a session listing) and say who is alive. That keeps the
cost of a poll constant (two requests) whatever the member count.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

DEFAULT_PREFIX = "docker/swarm/nodes"
DEFAULT_TTL = 20
# Consul refuses session TTLs outside 10s..24h.
MIN_TTL = 10
MAX_TTL = 86400
# A member is "expiring" once less than this share of its TTL is left. The
# heartbeat renews every TTL/4, so a healthy node never has less than three
# quarters left; under a quarter means at least two renewals were missed.
DEFAULT_EXPIRING_FRACTION = 0.25
SCHEMA_VERSION = 1

# The document's field names, shared with the heartbeat script.
DOCUMENT_FIELDS = (
    "schema",
    "address",
    "hostname",
    "role",
    "engine_version",
    "labels",
    "ttl",
    "heartbeat",
    "heartbeat_iso",
)
# Fields that change on every heartbeat and so are left out of comparisons.
HEARTBEAT_FIELDS = ("heartbeat", "heartbeat_iso")

# Options of everything that reads or writes the membership, and of what tells
# alive from expiring; the doc fragment picluster.swarm.membership documents them, once.
PREFIX_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {"prefix": {"type": "str", "default": DEFAULT_PREFIX}}
READ_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "expiring_fraction": {"type": "float", "default": DEFAULT_EXPIRING_FRACTION},
}

STATES = ("alive", "expiring", "expired")
# Name of the Consul session that holds a member's key; the heartbeat uses the
# same name, so it can take over a session that the module created.
SESSION_NAME_FORMAT = "swarm-member {address}"

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|\u00b5s|ms|s|m|h)")


class InvalidEntry(ValueError):
    """A key or value under the prefix that is not a well-formed member."""


def normalize_prefix(prefix: str) -> str:
    """Return the prefix without leading or trailing slashes ('/a/b/' -> 'a/b')."""
    cleaned = (prefix or "").strip().strip("/")
    if not cleaned:
        raise ValueError(f"the membership prefix must not be empty (default: {DEFAULT_PREFIX})")
    return cleaned


def member_key(prefix: str, address: str) -> str:
    """Return the Consul key of a member: '<prefix>/<ip>:<port>'."""
    return f"{normalize_prefix(prefix)}/{address}"


def parse_address(address: str) -> Tuple[str, int]:
    """Split 'ip:port' (or '[v6]:port') into (ip, port), raising InvalidEntry when it is not one."""
    text = (address or "").strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise InvalidEntry(f"'{text}' is not <ip>:<port>")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise InvalidEntry(f"'{text}' is not <ip>:<port> (write IPv6 addresses as [addr]:port)")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        raise InvalidEntry(f"'{text}' does not start with an IP address") from None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidEntry(f"'{text}' has no valid port (1-65535)")
    return ip, int(port_text)


def format_address(ip: str, port: int) -> str:
    """Inverse of parse_address."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def validate_address(address: str) -> str:
    """Return the canonical 'ip:port' form of address, raising InvalidEntry when it is not one."""
    return format_address(*parse_address(address))


def parse_key(prefix: str, key: str) -> Optional[str]:
    """Return the member address a key names, None for the prefix folder itself.

    Raises InvalidEntry for keys under the prefix that are not '<prefix>/<ip>:<port>'.
    """
    base = normalize_prefix(prefix) + "/"
    if not key.startswith(base):
        raise InvalidEntry(f"key is outside the prefix {base}")
    rest = key[len(base):]
    if rest == "":
        return None
    if "/" in rest:
        raise InvalidEntry("key is nested below the prefix; members are <prefix>/<ip>:<port>")
    return validate_address(rest)


def iso_time(epoch: float) -> str:
    """Return epoch seconds as an ISO 8601 UTC time ('2025-01-01T12:00:00Z')."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_document(
    address: str,
    *,
    hostname: str = "",
    role: str = "worker",
    engine_version: str = "",
    labels: Optional[Mapping[str, Any]] = None,
    ttl: int = DEFAULT_TTL,
    heartbeat: Optional[float] = None,
) -> Dict[str, Any]:
    """Return the JSON document stored as a member's value."""
    beat = round(time.time() if heartbeat is None else heartbeat, 3)
    return {
        "schema": SCHEMA_VERSION,
        "address": validate_address(address),
        "hostname": hostname or "",
        "role": role or "",
        "engine_version": engine_version or "",
        "labels": {str(k): str(v) for k, v in (labels or {}).items()},
        "ttl": int(ttl),
        "heartbeat": beat,
        "heartbeat_iso": iso_time(beat),
    }


def encode_document(document: Mapping[str, Any]) -> str:
    """Serialise a document the same way every writer does (sorted keys, compact)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def comparable(document: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """Return the document without its heartbeat time, for change detection and diffs."""
    if document is None:
        return None
    return {k: v for k, v in document.items() if k not in HEARTBEAT_FIELDS}


def decode_kv_value(entry: Mapping[str, Any]) -> str:
    """Return the text of a KV entry as Consul's HTTP API returns it (base64 in 'Value')."""
    raw = entry.get("Value")
    if raw is None:
        return ""
    try:
        return base64.b64decode(raw).decode("utf-8")
    except (ValueError, TypeError):
        raise InvalidEntry("value is not base64-encoded UTF-8 text") from None


def _require_type(doc: Mapping[str, Any], field: str, kinds: Tuple[type, ...], kind_name: str) -> None:
    value = doc.get(field)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
        raise InvalidEntry(f"field '{field}' must be {kind_name}, got {value!r}")


def parse_value(address: str, text: str) -> Dict[str, Any]:
    """Validate a member value and return it as a document.

    A JSON object is our format. A bare '<ip>:<port>' equal to the key is what
    classic swarm itself wrote (no heartbeat time): accepted as format 'classic'.
    """
    stripped = text.strip()
    if not stripped:
        raise InvalidEntry("value is empty")
    try:
        classic = validate_address(stripped)
    except InvalidEntry:
        classic = None
    if classic is not None:
        if classic != address:
            raise InvalidEntry(f"value {classic} does not match the key's address {address}")
        return {"schema": 0, "address": address}
    try:
        doc = json.loads(stripped)
    except ValueError as exc:
        raise InvalidEntry(f"value is not valid JSON ({exc}): {_shorten(stripped)}") from None
    if not isinstance(doc, dict):
        raise InvalidEntry(f"value is a JSON {type(doc).__name__}, expected an object")
    _require_type(doc, "address", (str,), "a string")
    if not doc.get("address"):
        raise InvalidEntry("field 'address' is missing")
    if validate_address(doc["address"]) != address:
        raise InvalidEntry(f"address {doc['address']} in the value does not match the key's address {address}")
    if "heartbeat" not in doc:
        raise InvalidEntry("field 'heartbeat' (epoch seconds) is missing")
    _require_type(doc, "heartbeat", (int, float), "a number of epoch seconds")
    _require_type(doc, "ttl", (int, float), "a number of seconds")
    for field in ("hostname", "role", "engine_version", "heartbeat_iso"):
        _require_type(doc, field, (str,), "a string")
    labels = doc.get("labels")
    if labels is not None and not isinstance(labels, dict):
        raise InvalidEntry(f"field 'labels' must be an object of strings, got {labels!r}")
    return doc


def _shorten(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_duration(text: Any) -> Optional[float]:
    """Parse a Go duration as Consul reports it ('20s', '1m0s', '500ms') into seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    parts = _DURATION_RE.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def classify(
    heartbeat: Optional[float],
    ttl: float,
    session_alive: bool,
    now: float,
    expiring_fraction: float = DEFAULT_EXPIRING_FRACTION,
) -> Tuple[str, Optional[float], Optional[float]]:
    """Return (state, seconds since the heartbeat, seconds left).

    Consul only promises not to invalidate a session before its TTL and may
    keep it up to twice as long, so a member is expired as soon as its last
    heartbeat is older than the TTL, whether or not the key is still there.
    """
    if not session_alive:
        age = None if heartbeat is None else max(0.0, now - heartbeat)
        return "expired", _round(age), 0.0
    if heartbeat is None:
        # Classic swarm values carry no time: the session is all we know.
        return "alive", None, None
    age = max(0.0, now - heartbeat)
    left = ttl - age
    if left <= 0:
        return "expired", _round(age), 0.0
    if left < ttl * expiring_fraction:
        return "expiring", _round(age), _round(left)
    return "alive", _round(age), _round(left)


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def index_sessions(sessions: Optional[List[Mapping[str, Any]]]) -> Dict[str, Mapping[str, Any]]:
    """Map session ID to session, from a /v1/session/list answer."""
    return {s["ID"]: s for s in sessions or [] if isinstance(s, Mapping) and s.get("ID")}


def build_member(
    address: str,
    entry: Mapping[str, Any],
    doc: Mapping[str, Any],
    sessions: Mapping[str, Mapping[str, Any]],
    *,
    now: float,
    expiring_fraction: float,
) -> Dict[str, Any]:
    """Combine a KV entry, its parsed value and its session into one member record."""
    session_id = entry.get("Session") or None
    session = sessions.get(session_id) if session_id else None
    ttl = parse_duration(session.get("TTL")) if session else None
    if ttl is None:
        ttl = float(doc.get("ttl") or DEFAULT_TTL)
    heartbeat = doc.get("heartbeat")
    state, age, left = classify(heartbeat, ttl, session is not None, now, expiring_fraction)
    ip, port = parse_address(address)
    return {
        "key": entry.get("Key"),
        "address": address,
        "ip": ip,
        "port": port,
        "hostname": doc.get("hostname") or "",
        "role": doc.get("role") or "",
        "engine_version": doc.get("engine_version") or "",
        "labels": dict(doc.get("labels") or {}),
        "session": session_id,
        "session_node": session.get("Node") if session else None,
        "ttl": int(ttl) if float(ttl).is_integer() else ttl,
        "heartbeat": heartbeat,
        "heartbeat_iso": doc.get("heartbeat_iso") or (iso_time(heartbeat) if heartbeat is not None else None),
        "seconds_since_heartbeat": age,
        "seconds_left": left,
        "state": state,
        "format": "classic" if doc.get("schema") == 0 else "json",
    }


def collect_members(
    prefix: str,
    kv_entries: Optional[List[Mapping[str, Any]]],
    sessions: Optional[List[Mapping[str, Any]]],
    now: Optional[float] = None,
    expiring_fraction: float = DEFAULT_EXPIRING_FRACTION,
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Turn a recursive KV read and a session listing into (members, invalid entries).

    Members are sorted by address; invalid entries say which key and why.
    """
    moment = time.time() if now is None else now
    session_index = index_sessions(sessions)
    members: List[Dict[str, Any]] = []
    invalid: List[Dict[str, Any]] = []
    for entry in kv_entries or []:
        key = str(entry.get("Key", ""))
        try:
            address = parse_key(prefix, key)
            if address is None:
                continue
            doc = parse_value(address, decode_kv_value(entry))
        except InvalidEntry as exc:
            invalid.append({"key": key, "reason": str(exc), "session": entry.get("Session")})
            continue
        member = build_member(address, entry, doc, session_index, now=moment, expiring_fraction=expiring_fraction)
        members.append(member)
    members.sort(key=_address_order)
    return members, invalid


def _address_order(member: Mapping[str, Any]) -> Tuple[int, int, int]:
    """Numeric order: 10.0.0.5 before 10.0.0.10."""
    ip = ipaddress.ip_address(member["ip"])
    return ip.version, int(ip), member["port"]


def count_states(members: List[Mapping[str, Any]]) -> Dict[str, int]:
    """Return {'total': n, 'alive': n, 'expiring': n, 'expired': n}."""
    counts = {"total": len(members)}
    for state in STATES:
        counts[state] = sum(1 for m in members if m["state"] == state)
    return counts


def filter_states(members: List[Dict[str, Any]], states: Optional[List[str]]) -> List[Dict[str, Any]]:
    """Keep the members whose state is in states (all of them when states is empty)."""
    if not states:
        return list(members)
    wanted = set(states)
    return [m for m in members if m["state"] in wanted]


def matches(member: Mapping[str, Any], name: str) -> bool:
    """True when name is the member's address, IP or hostname."""
    return name in (member.get("address"), member.get("ip"), member.get("hostname"))


def missing_members(members: List[Mapping[str, Any]], expected: List[str]) -> List[Dict[str, Any]]:
    """Return the expected names that have no live member, with the reason."""
    missing = []
    for name in expected:
        found = [m for m in members if matches(m, name)]
        if not found:
            missing.append({"name": name, "reason": "not registered"})
        elif not any(m["state"] != "expired" for m in found):
            member = found[0]
            missing.append({"name": name, "reason": describe_expired(member)})
    return missing


def describe_expired(member: Mapping[str, Any]) -> str:
    """Say why a member counts as expired, for failure messages."""
    if not member.get("session"):
        return "expired (no session holds its key)"
    age = member.get("seconds_since_heartbeat")
    if age is None:
        return "expired (its session is gone)"
    return "expired (last heartbeat {:.0f} s ago, TTL {} s)".format(age, member.get("ttl"))


def describe_member(member: Mapping[str, Any]) -> str:
    """One-line summary for messages: 'node1 (10.0.0.11:2375, alive)'."""
    name = member.get("hostname") or member.get("address")
    return "{} ({}, {})".format(name, member.get("address"), member.get("state"))


def read_membership(
    client: Any,
    prefix: str,
    expiring_fraction: float = DEFAULT_EXPIRING_FRACTION,
    now: Optional[float] = None,
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """One poll: a recursive KV read, then the session list (two requests in all).

    The KV read comes first: a session a key names existed when the key was
    read, so if it is missing from the later listing it has really gone.
    `client` is anything with kv_list(prefix) and session_list() (ConsulClient).
    """
    cleaned = normalize_prefix(prefix)
    entries = client.kv_list(cleaned)
    sessions = client.session_list()
    return collect_members(cleaned, entries, sessions, now=now, expiring_fraction=expiring_fraction)


def unmet_wait(
    members: List[Mapping[str, Any]], wait_for_alive: int, expected: List[str]
) -> Optional[str]:
    """Say what a wait still lacks, or None when it is satisfied.

    Expiring members still count: their session is valid and the next
    heartbeat may come in time.
    """
    live = [m for m in members if m["state"] != "expired"]
    problems = []
    if len(live) < wait_for_alive:
        problems.append(f"{len(live)} of the {wait_for_alive} wanted members are alive")
    missing = missing_members(list(members), expected)
    if missing:
        problems.append("missing: " + ", ".join("{} ({})".format(m["name"], m["reason"]) for m in missing))
    if not problems:
        return None
    expired = [m for m in members if m["state"] == "expired"]
    if expired:
        problems.append("expired: " + ", ".join("{} {}".format(m["address"], describe_expired(m)) for m in expired))
    if live:
        problems.append("alive: " + ", ".join(describe_member(m) for m in live))
    return "; ".join(problems)
