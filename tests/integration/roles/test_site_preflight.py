"""site.yml refuses a cluster description that would break halfway, in its first play, before any host changes."""

from __future__ import annotations

from _play import assert_refused, local_inventory, run_playbook

SITE = [{"import_playbook": "picluster.swarm.site"}]
FIRST_CHANGE = "PLAY [Prepare the Pis"


def masters_on_loopback(count: int, **all_vars: object) -> dict:
    """Masters on this host's loopback (local connection): their network is 127.0.0.0/8."""
    inventory = local_inventory([f"m{i}" for i in range(1, count + 1)], ["n1"], **all_vars)
    for host in inventory["all"]["children"]["masters"]["hosts"].values():
        host["picluster_address"] = "127.0.0.1"
    inventory["all"]["children"]["nodes"]["hosts"]["n1"]["picluster_address"] = "127.0.0.2"
    return inventory


def test_vip_outside_the_masters_network(tmp_path):
    rc, out = run_playbook(tmp_path, masters_on_loopback(3, picluster_vip="10.99.0.250"), SITE)
    assert_refused(rc, out, "picluster_vip (vip_address) 10.99.0.250 cannot be the cluster's virtual IP",
                   "is outside the network 127.0.0.0/8 of m1, m2, m3", "pick a free address in it")
    assert FIRST_CHANGE not in out


def test_vip_that_is_a_master_s_own_address(tmp_path):
    rc, out = run_playbook(tmp_path, masters_on_loopback(3, picluster_vip="127.0.0.1"), SITE)
    assert_refused(rc, out, "127.0.0.1 is m1's own address; pick a free address for the VIP")
    assert FIRST_CHANGE not in out


def test_vip_with_one_master(tmp_path):
    rc, out = run_playbook(tmp_path, masters_on_loopback(1, picluster_vip="127.0.0.250"), SITE)
    assert_refused(rc, out, "a virtual IP (127.0.0.250) needs at least two hosts in 'masters'",
                   "With one master, unset picluster_vip")
    assert FIRST_CHANGE not in out


def test_vip_that_is_not_an_address(tmp_path):
    rc, out = run_playbook(tmp_path, masters_on_loopback(3, picluster_vip="vip.example"), SITE)
    assert_refused(rc, out, "'vip.example' is not an IPv4 address")
    assert FIRST_CHANGE not in out


def test_even_number_of_masters(tmp_path):
    rc, out = run_playbook(tmp_path, masters_on_loopback(2), SITE)
    assert_refused(rc, out, "2 Consul servers in 'masters' (m1, m2)", "use 1, 3 or 5 servers")
    assert FIRST_CHANGE not in out


def test_even_number_of_swarm_managers(tmp_path):
    """Consul servers elsewhere (an odd group), swarm managers even: the swarm's own check speaks."""
    inventory = masters_on_loopback(3, swarm_managers_group="nodes")
    inventory["all"]["children"]["nodes"]["hosts"]["n2"] = {"picluster_address": "127.0.0.3"}
    rc, out = run_playbook(tmp_path, inventory, SITE)
    assert_refused(rc, out, "2 swarm managers wanted (n1, n2)", "Keep 1, 3 or 5 hosts in 'nodes'")
    assert FIRST_CHANGE not in out
