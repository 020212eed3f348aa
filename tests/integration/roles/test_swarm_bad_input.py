"""The swarm roles refuse bad input before touching a host, and render classic mode's containers."""

from __future__ import annotations

from _play import assert_refused, local_inventory, run_playbook

MANAGER_PLAY = {"name": "Managers", "hosts": "masters", "gather_facts": False,
                "roles": ["picluster.swarm.swarm_manager"]}
CLASSIC_ENTRY_POINT = {"name": "picluster.swarm.swarm", "tasks_from": "classic"}
AGENT_PLAY = {"name": "Agents", "hosts": "all", "gather_facts": False, "roles": ["picluster.swarm.swarm_agent"]}


def test_even_manager_count(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1", "m2"], ["n1"]), [MANAGER_PLAY])
    assert_refused(rc, out, "2 swarm managers wanted (m1, m2)", "Keep 1, 3 or 5 hosts")


def test_even_count_after_a_manager_leaves(tmp_path):
    inventory = local_inventory(["m1", "m2", "m3"], [])
    inventory["all"]["children"]["masters"]["hosts"]["m3"] = {"swarm_agent_state": "absent"}
    rc, out = run_playbook(tmp_path, inventory, [AGENT_PLAY])
    assert_refused(rc, out, "2 swarm managers wanted (m1, m2)")


def test_unknown_node_in_labels(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), [AGENT_PLAY],
                           extra_vars={"swarm_labels": {"n1": {"disk": "ssd"}, "n9": {"zone": "a"}}})
    assert_refused(rc, out, "swarm_labels names n9, not in the inventory")


def test_labels_not_a_dict(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), [AGENT_PLAY],
                           extra_vars={"swarm_labels": {"n1": "disk=ssd"}})
    assert_refused(rc, out, "swarm_labels values must be dicts of labels", "n1")


def test_wrong_mode(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), [AGENT_PLAY],
                           extra_vars={"swarm_mode": "kubernetes"})
    assert_refused(rc, out, "swarm_mode", "swarm, classic")


def test_managers_missing_from_the_play(tmp_path):
    play = dict(AGENT_PLAY, hosts="nodes")
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), [play])
    assert_refused(rc, out, "the play must include every swarm manager (m1")


def test_heartbeat_ttl_outside_consuls_limits(tmp_path):
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), [AGENT_PLAY],
                           extra_vars={"swarm_heartbeat_ttl": 5})
    assert_refused(rc, out, "swarm_heartbeat_ttl is 5: Consul takes session TTLs from 10 to 86400 seconds")


def test_classic_containers_rendered(tmp_path):
    """Classic swarm's image cannot be pulled here: check the containers as data (the swarm role's entry point)."""
    play = [{"name": "Classic", "hosts": "n1", "gather_facts": False, "tasks": [
        {"name": "Render", "ansible.builtin.include_role": CLASSIC_ENTRY_POINT,
         "vars": {"swarm_node_address": "10.0.0.11", "swarm_consul_url": "10.0.0.10:8500", "swarm_engine_port": 2375}},
        {"name": "Check", "ansible.builtin.assert": {"that": [
            "swarm_classic_agent_container.command == ['join', '--addr=10.0.0.11:2375', 'consul://10.0.0.10:8500/']",
            "swarm_classic_manager_container.command == ['manage', 'consul://10.0.0.10:8500/']",
            "swarm_classic_manager_container.published_ports == ['1234:2375']",
            "swarm_classic_agent_container.image == 'swarm:1.2.9'"]}}]}]
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), play)
    assert rc == 0, out


def test_classic_entry_point_validates_its_inputs(tmp_path):
    play = [{"name": "Classic", "hosts": "n1", "gather_facts": False, "tasks": [
        {"name": "Render", "ansible.builtin.include_role": CLASSIC_ENTRY_POINT}]}]
    rc, out = run_playbook(tmp_path, local_inventory(["m1"], ["n1"]), play)
    assert_refused(rc, out, "missing required arguments: swarm_consul_url, swarm_node_address")


def test_short_ttl_with_several_masters_is_warned_about(tmp_path):
    # Classic mode with the secure Consul defaults stops the play after the warning, before any host changes.
    rc, out = run_playbook(tmp_path, local_inventory(["m1", "m2", "m3"], ["n1"]), [MANAGER_PLAY],
                           extra_vars={"swarm_heartbeat_ttl": 10, "swarm_mode": "classic"})
    assert_refused(rc, out, "swarm_heartbeat_ttl is 10 s with 3 masters", "Use 20 s (the default) or more",
                   "classic swarm (swarm_mode: classic)")
