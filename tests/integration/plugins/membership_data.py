# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write members straight into a real Consul (plain HTTP), as nodes and other tools would."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Optional


def member_value(address: str, age: float = 0.0, ttl: int = 600, **fields: Any) -> str:
    beat = time.time() - age
    document = {"schema": 1, "address": address, "hostname": fields.get("hostname", ""),
                "role": fields.get("role", "worker"), "engine_version": fields.get("engine_version", ""),
                "labels": fields.get("labels", {}), "ttl": ttl, "heartbeat": round(beat, 3),
                "heartbeat_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(beat))}
    return json.dumps(document)


def put_member(agent: Any, prefix: str, address: str, *, age: float = 0.0, ttl: int = 600, session: bool = True,
               value: Optional[str] = None, **fields: Any) -> Optional[str]:
    """Register address with a session of the given TTL and a heartbeat `age` seconds old."""
    session_id = agent.session_create(name=f"swarm-member {address}", ttl=f"{ttl}s") if session else None
    text = value if value is not None else member_value(address, age=age, ttl=ttl, **fields)
    assert agent.kv_put(f"{prefix}/{address}", text, acquire=session_id)
    return session_id


def standard_cluster(agent: Any, prefix: str) -> Dict[str, Optional[str]]:
    """Five members in every state plus four entries other tools left behind."""
    sessions = {
        "a": put_member(agent, prefix, "10.30.0.1:2375", hostname="a", role="manager", labels={"arch": "armv7l"}),
        "b": put_member(agent, prefix, "10.30.0.2:2375", age=500, hostname="b"),  # 100 s of 600 left: expiring
        "c": put_member(agent, prefix, "10.30.0.3:2375", age=700, hostname="c"),  # key still there, heartbeat old
        "d": put_member(agent, prefix, "10.30.0.4:2375", session=False, hostname="d"),  # nobody holds the key
        "e": put_member(agent, prefix, "10.30.0.5:2375", value="10.30.0.5:2375"),  # classic swarm's own value
    }
    agent.kv_put(f"{prefix}/junk", "left by someone")
    agent.kv_put(f"{prefix}/10.30.0.6:2375", "{not json")
    agent.kv_put(f"{prefix}/10.30.0.7:2375", member_value("10.30.0.8:2375"))
    agent.kv_put(f"{prefix}/10.30.0.9:2375/extra", "x")
    return sessions
