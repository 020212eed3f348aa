# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real heartbeat script against a real Consul: TTL expiry, clean shutdown, recovery."""

from __future__ import annotations

import base64
import json
import signal
import time

from ansible_collections.picluster.swarm.plugins.module_utils._consul import ConsulClient, resolve_settings
from ansible_collections.picluster.swarm.plugins.module_utils._membership import DOCUMENT_FIELDS, read_membership
from ansible_runner import ROOT, module_task, wait_until

TTL = 10


def client_for(agent):
    return ConsulClient(resolve_settings(agent.module_args(), environ={}))


def member(agent, prefix, address):
    """The member as swarm_members sees it (module_utils, two requests), or None."""
    members, _invalid = read_membership(client_for(agent), prefix)
    found = [m for m in members if m["address"] == address]
    return found[0] if found else None


def start(heartbeat, agent, prefix, address, *extra):
    return heartbeat("--consul", agent.url, "--prefix", prefix, "--address", address, "--ttl", str(TTL),
                     "--hostname", "pi-" + address.split(":")[0].rsplit(".", 1)[-1], "--role", "worker",
                     "--engine-version", "20.10.24", "--label", "arch=armv7l", *extra)


def test_ttl_expiry_after_the_heartbeat_dies(consul_agent, kv_prefix, heartbeat, ansible):
    """Kill the heartbeat (no clean shutdown): the member turns expired after one TTL, then disappears."""
    address = "10.40.0.1:2375"
    process = start(heartbeat, consul_agent, kv_prefix, address)
    wait_until(lambda: (m := member(consul_agent, kv_prefix, address)) and m["state"] == "alive", 20,
               what="heartbeat registration")
    # Let it renew at least once, so the timing below starts from a renewal.
    first = member(consul_agent, kv_prefix, address)["heartbeat"]
    wait_until(lambda: member(consul_agent, kv_prefix, address)["heartbeat"] > first, TTL, what="a renewal")
    last_beat = member(consul_agent, kv_prefix, address)["heartbeat"]
    process.terminate(signal.SIGKILL)
    killed = time.time()

    timeline = {}
    key_gone_at = None
    module_result = None
    module_output = ""
    deadline = killed + 4 * TTL + 10
    while time.time() < deadline:
        now_member = member(consul_agent, kv_prefix, address)
        now = time.time()
        if now_member is None:
            key_gone_at = now
            break
        timeline.setdefault(now_member["state"], now)
        if now_member["state"] == "expired" and module_result is None:
            # The module agrees while Consul still keeps the key.
            run = ansible.run([module_task("swarm_members", dict(consul_agent.module_args(), prefix=kv_prefix,
                                                                 include_expired=True))])
            module_result = run[0]
            module_output = run.stdout[-2000:]
        time.sleep(0.25)

    assert key_gone_at is not None, f"key still present {deadline - killed:.0f} s after the kill"
    assert module_result is not None, f"never saw the member expired; timeline {timeline}"
    assert not module_result.get("failed"), module_output
    seen = [m for m in module_result["members"] if m["address"] == address]
    assert seen and seen[0]["state"] == "expired" and seen[0]["seconds_left"] == 0
    expired_after = timeline["expired"] - last_beat
    gone_after = key_gone_at - last_beat
    measurement = {
        "ttl_seconds": TTL,
        "expiring_after_last_heartbeat_s": round(timeline.get("expiring", timeline["expired"]) - last_beat, 1),
        "expired_after_last_heartbeat_s": round(expired_after, 1),
        "key_deleted_after_last_heartbeat_s": round(gone_after, 1),
        "kill_after_last_heartbeat_s": round(killed - last_beat, 1),
    }
    print("TTL measurement:", json.dumps(measurement))
    out = ROOT / "tests" / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ttl_measurement.json").write_text(json.dumps(measurement, indent=2) + "\n")
    # Expired exactly when the TTL ran out (polling granularity 0.25 s + a poll's own time) ...
    assert TTL - 0.5 <= expired_after <= TTL + 2.5
    # ... and Consul deleted the key after the TTL, within its documented up-to-twice-the-TTL.
    assert TTL <= gone_after <= 2 * TTL + 5


def test_clean_shutdown_deregisters(consul_agent, kv_prefix, heartbeat):
    address = "10.40.0.2:2375"
    process = start(heartbeat, consul_agent, kv_prefix, address)
    wait_until(lambda: member(consul_agent, kv_prefix, address) is not None, 20, what="registration")
    registered = member(consul_agent, kv_prefix, address)
    assert (registered["hostname"], registered["role"], registered["engine_version"], registered["labels"]) == (
        "pi-2", "worker", "20.10.24", {"arch": "armv7l"})
    assert registered["ttl"] == TTL and registered["state"] == "alive"
    session = consul_agent.session_info(registered["session"])
    assert (session["Behavior"], session["TTL"], session["LockDelay"]) == ("delete", f"{TTL}s", 0)
    assert process.terminate(signal.SIGTERM) == 0
    assert consul_agent.kv_get(f"{kv_prefix}/{address}") is None  # gone at once, not after a TTL
    assert consul_agent.session_info(registered["session"]) is None
    assert "deregistered" in process.output()


def test_session_destroyed_externally_is_recreated(consul_agent, kv_prefix, heartbeat):
    address = "10.40.0.3:2375"
    process = start(heartbeat, consul_agent, kv_prefix, address)
    wait_until(lambda: member(consul_agent, kv_prefix, address) is not None, 20, what="registration")
    old_session = member(consul_agent, kv_prefix, address)["session"]
    consul_agent.session_destroy(old_session)  # behaviour delete removes the key with it
    assert member(consul_agent, kv_prefix, address) is None
    took = wait_until(lambda: (m := member(consul_agent, kv_prefix, address)) is not None
                      and m["session"] != old_session and m["state"] == "alive", TTL + 5, what="re-registration")
    assert took <= TTL / 2 + 3  # at the next renewal
    assert "lost session" in process.output()
    process.terminate(signal.SIGINT)
    assert member(consul_agent, kv_prefix, address) is None


def test_consul_restart_is_survived(consul_factory, kv_prefix, heartbeat):
    agent = consul_factory("restarting")
    address = "10.40.0.4:2375"
    process = start(heartbeat, agent, kv_prefix, address)
    wait_until(lambda: member(agent, kv_prefix, address) is not None, 20, what="registration")
    agent.stop()  # dev mode: every session and key is lost
    time.sleep(TTL / 2 + 1)  # long enough for at least one renewal to fail
    agent.start()
    took = wait_until(lambda: member(agent, kv_prefix, address) is not None, 30, what="re-registration after restart")
    assert took <= TTL / 2 + 3  # bounded backoff, never longer than half a TTL
    output = process.output()
    assert "cannot reach Consul" in output and "Consul answers again" in output
    assert process.process.poll() is None  # it kept running through the outage


def test_restart_of_the_heartbeat_takes_over_its_session(consul_agent, kv_prefix, heartbeat, ansible):
    """swarm_registration creates the session; the heartbeat then keeps it alive (same session name)."""
    address = "10.40.0.5:2375"
    run = ansible.run([module_task("swarm_registration", dict(consul_agent.module_args(), prefix=kv_prefix,
                                                              address=address, ttl=TTL, hostname="pi-5"))])
    session = run[0]["session"]
    process = start(heartbeat, consul_agent, kv_prefix, address)
    wait_until(lambda: f"took over session {session}" in process.output(), 20, what="take-over")
    time.sleep(TTL + 1)  # past the module's TTL: only the heartbeat's renewals keep it
    alive = member(consul_agent, kv_prefix, address)
    assert alive["session"] == session and alive["state"] == "alive" and alive["hostname"] == "pi-5"
    process.terminate(signal.SIGTERM)


def test_heartbeat_document_matches_module_fields(consul_agent, kv_prefix, heartbeat):
    address = "10.40.0.6:2375"
    start(heartbeat, consul_agent, kv_prefix, address)
    wait_until(lambda: consul_agent.kv_get(f"{kv_prefix}/{address}") is not None, 20, what="registration")
    value = json.loads(base64.b64decode(consul_agent.kv_get(f"{kv_prefix}/{address}")["Value"]))
    assert sorted(value) == sorted(DOCUMENT_FIELDS)
