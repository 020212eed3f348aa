"""The whole cluster, built by site.yml, and the failure drill.

Runs on this host and reaches the lab through the lab package: nodes with
`docker exec`, the proxy on the master's lab address, Consul through our own
swarm_members module (the lab network is a local bridge, so all of it is on
this machine). Tests run in file order; the drill comes last and leaves the
cluster whole.
"""

from __future__ import annotations

import json
import re

from picluster_lab import REPORTS, DrillFailed, DrillLimits, DrillRun, Lab, secret_scan
from picluster_lab.controller import recap
from scenario_settings import DRAIN_BOUND_S, REACTIVATE_BOUND_S, RECONCILE, TTL

LAB = Lab.from_env()
HOSTS = ["master1", "master2", "master3", "node1", "node2", "node3"]
MASTERS = ["master1", "master2", "master3"]
DEMO_HOST = "demo.picluster.lab"
# The test's limits: tight enough to catch a slow failover on a loaded 2-core machine.
LIMITS = DrillLimits(detect_s=TTL + 20, reschedule_s=120, rejoin_s=180, max_requests=600, max_traffic_s=300)
DETECTION_BOUND_S = TTL + 15


def test_mitogen_runs_over_ssh_and_sudo():
    """Mitogen switched on the way docs/speed.md tells users to (installed beside requirements.txt in the
    controller user's venv): its own action answers only under its strategy, with its connection stack for
    each host, SSH to pi, then sudo (the inventory's become). test_failover.py runs site.yml under it."""
    user = LAB.controller(mitogen=True)
    run = user.run(["ansible", "all", "-i", str(user.inventory), "-b", "-m", "mitogen_get_stack"], timeout=900)
    assert run.returncode == 0, run.stdout[-4000:]
    for method in ("ssh", "sudo"):
        assert len(re.findall(rf"\bmethod\W+{method}\b", run.stdout)) == len(HOSTS), (method, run.stdout[-4000:])


def test_six_swarm_nodes_ready_three_managers():
    nodes = LAB.swarm_nodes()
    assert sorted(n.hostname for n in nodes) == sorted(HOSTS) == sorted(LAB.hosts())
    assert all(n.status == "Ready" and n.availability == "Active" for n in nodes), nodes
    managers = {n.hostname: n.manager_status for n in nodes if n.manager_status}
    assert sorted(managers) == MASTERS and sorted(managers.values()) == ["Leader", "Reachable", "Reachable"]


def test_six_alive_members_agree_with_swarm():
    members = LAB.members()
    assert members.counts["alive"] == 6, members.members
    master = LAB.live_master()
    in_swarm = {LAB.sh(master, ["docker", "node", "inspect", "-f", "{{.Status.Addr}}", h]).strip() for h in HOSTS}
    assert set(members.ips("alive")) == in_swarm == {LAB.address(h) for h in HOSTS}


def test_each_member_s_session_is_bound_to_its_own_node():
    """No single master: every heartbeat talks to the Consul agent on its own node, so
    its session follows that node's health, never another machine's."""
    members = LAB.members()
    assert {m.hostname: m.raw["session_node"] for m in members.members} == {h: h for h in HOSTS}


def test_no_secret_shows_in_the_output_of_the_run_with_diff():
    """The converge ran site.yml with --diff -vvv, as a careful user debugging it does: every file it wrote and
    every task's result is shown, but no private key, ACL token, gossip key, join token or password may be.
    What to look for comes from lab/picluster_lab/secret_scan.py (a unit test keeps it complete): each owner-only
    file under the controller's pki directory, and the values that live on the nodes only."""
    log = (REPORTS / "cluster-first-run.log").read_text(errors="replace")
    assert "+++ after" in log, "the run that built the cluster did not show diffs: was it run with --diff?"
    assert "ESTABLISH SSH CONNECTION" in log, "the run that built the cluster was not run with -vvv"
    assert "PRIVATE KEY" not in log, [line for line in log.splitlines() if "PRIVATE KEY" in line][:3]

    def on_node(what: str) -> dict[str, str]:
        if what == "gossip":
            gossip = re.search(r'encrypt\s*=\s*"([^"]+)"', LAB.sh("master1", ["cat", "/etc/consul.d/secrets.hcl"]))
            assert gossip, "no gossip key in master1's /etc/consul.d/secrets.hcl"
            return {"gossip key": gossip.group(1)}
        return {f"swarm {role} join token": LAB.sh("master1", ["docker", "swarm", "join-token", "-q", role]).strip()
                for role in ("worker", "manager")}

    found = secret_scan.collect(LAB.pki_dir("consul").parent, on_node)
    kinds = {label.split("/")[0] for label in found}
    assert {"consul", "docker", "dashboard", "vip", "gossip key", "swarm worker join token"} <= kinds, sorted(found)
    # VRRP takes 8 characters at most; every other secret is longer.
    assert all(values and all(len(v) >= 8 for v in values) for values in found.values()), found.keys()
    shown = secret_scan.leaks(found, log)
    assert not shown, f"{shown} appear in build/reports/cluster-first-run.log ({len(log)} characters searched)"


def test_overlay_carries_traffic_between_nodes():
    LAB.sh("node1", ["docker", "run", "-d", "--rm", "--name", "ov-server", "--hostname", "ov-server",
                     "--network", "my-net", "picluster/demo-web:latest"])
    try:
        fetch = ("import urllib.request, time\n"
                 "for _ in range(30):\n"
                 "    try:\n"
                 "        print(urllib.request.urlopen('http://ov-server:8080/', timeout=2).read().decode()); break\n"
                 "    except OSError:\n"
                 "        time.sleep(1)\n")
        out = LAB.sh("node2", ["docker", "run", "--rm", "--network", "my-net", "picluster/demo-web:latest",
                               "python3", "-c", fetch], timeout=90)
        # Answered by the container on node1, reached by name from node2.
        assert json.loads(out)["container"] == "ov-server", out
    finally:
        LAB.sh("node1", ["docker", "rm", "-f", "ov-server"], check=False)


# Run inside a container on the overlay network: what anyone who can start a
# container on a node could try against Consul without a token. It does not
# verify Consul's certificate (an attacker would not need to).
ANONYMOUS_PROBE = r"""
import json, socket, ssl, struct, sys, urllib.error, urllib.request
master, node1, node2_key = sys.argv[1:4]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
def ask(url, method="GET", body=None):
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as answer:
            return [answer.status, answer.read().decode()[:300]]
    except urllib.error.HTTPError as error:
        return [error.code, ""]
    except Exception as error:
        return [0, type(error).__name__]
api = "https://%s:8501/v1/" % master
print(json.dumps({
    "forge": ask(api + "kv/docker/swarm/nodes/10.9.9.9:2376", "PUT", b"forged"),
    "delete": ask(api + "kv/" + node2_key, "DELETE"),
    "session": ask(api + "session/create", "PUT", b'{"Node": "node2", "TTL": "10s"}'),
    "acl": ask(api + "acl/tokens"),
    "members": ask(api + "agent/members"),
    "kv": ask(api + "kv/docker/swarm/nodes?recurse=true"),
    "plain_master": ask("http://%s:8500/v1/status/leader" % master),
    "plain_node1": ask("http://%s:8500/v1/status/leader" % node1),
    "plain_gateway": ask("http://%s:8500/v1/status/leader" % gateway()),
}))
"""


def test_consul_gives_nothing_to_an_anonymous_container_on_the_overlay():
    node2_key = f"docker/swarm/nodes/{LAB.address('node2')}:2376"
    out = LAB.sh("node2", ["docker", "run", "--rm", "--network", "my-net", "picluster/demo-web:latest",
                           "python3", "-c", ANONYMOUS_PROBE, LAB.address("master1"), LAB.address("node1"), node2_key],
                 timeout=90)
    seen = json.loads(out.strip().splitlines()[-1])
    for attempt in ("forge", "delete", "session", "acl"):
        assert seen[attempt][0] == 403, (attempt, seen)
    for listing in ("members", "kv"):  # reads of lists: refused, or filtered down to nothing
        status, body = seen[listing]
        assert status == 403 or (status in (200, 404) and body.strip() in ("", "[]", "null")), (listing, seen)
    for plain in ("plain_master", "plain_node1", "plain_gateway"):  # plain HTTP is on each host's loopback only
        assert seen[plain][0] == 0, (plain, seen)
    assert LAB.members().counts["alive"] == 6


def test_proxy_serves_the_demo_from_several_nodes_through_the_virtual_ip():
    assert LAB.vip and LAB.vip_holder() in MASTERS
    seen = set()
    for _request in range(60):
        answer = LAB.http(DEMO_HOST, via=LAB.vip)
        assert answer.ok, answer
        seen.add(answer.json()["node"])
        if len(seen) >= 2:
            break
    assert len(seen) >= 2, f"only {seen} answered"
    assert LAB.http("nobody.picluster.lab", via=LAB.vip).status == 404


def test_the_entry_point_serves_https_from_the_edge_ca_and_http_only_redirects():
    """HTTPS by default: the certificate verifies against the edge CA the role made on the
    controller, for the dashboard's and the demo's names (LAB.http checks it); plain HTTP
    answers those names only with a redirect, never the page."""
    assert (LAB.pki_dir("edge") / "ca.pem").is_file()
    assert LAB.http(DEMO_HOST, via=LAB.vip).status == 200
    assert LAB.http("dashboard.picluster.lab", "/api/cluster", via=LAB.vip).status == 401  # served; asks a login
    for name in (DEMO_HOST, "dashboard.picluster.lab"):
        plain = LAB.http(name, "/api/cluster", via=LAB.vip, scheme="http")
        assert plain.status == 301 and plain.headers.get("Location") == f"https://{name}/api/cluster", plain
        assert '"node"' not in plain.body and '"nodes"' not in plain.body


def test_every_master_runs_the_proxy():
    for master in MASTERS:
        answer = LAB.http(DEMO_HOST, via=master)
        assert answer.ok, f"the proxy on {master}: {answer}"


def test_an_unchanged_cluster_re_runs_without_the_roles_and_a_changed_file_is_named():
    """The fast path (role site_state): site.yml again as the user runs it, nothing changed since the converge.
    Every host is as that run left it with the same inputs, so the roles' plays match no host and nothing
    changes. Then one file the consul role wrote is written again on node2, with the same bytes (its change time
    moves, as any write's does): a run that only compares (site_state_check_only) names node2 and that file, and
    no other host. (The failover drill's whole run, later, is a full one: a master is off.)"""
    run = LAB.user_run(playbooks=["picluster.swarm.site"], timeout=900)
    assert run.returncode == 0, run.stdout[-4000:]
    counts, flat = recap(run.stdout), " ".join(run.stdout.split())
    for host in HOSTS:
        assert f"{host}: as the last full run left it, with the same inputs" in flat, run.stdout[-4000:]
        # The preflights, the login check, the facts and the comparison still run (the first master runs the
        # cluster-wide preflights: 58 tasks at c25346c); a full run is over 400 tasks on a master, 150 on a node.
        assert counts[host]["changed"] == 0 and counts[host]["ok"] + counts[host]["skipped"] < 80, (host, counts)
    assert "Nothing to do: every role is skipped on every host" in flat
    assert run.stdout.count("skipping: no hosts matched") >= 9, run.stdout[-4000:]

    LAB.sh("node2", "cp -p /etc/consul.d/consul.hcl /tmp/consul.hcl && cat /tmp/consul.hcl > /etc/consul.d/consul.hcl")
    run = LAB.user_run(playbooks=["picluster.swarm.site"], args=["-e", "site_state_check_only=true"], timeout=900)
    assert run.returncode == 0, run.stdout[-4000:]
    flat = " ".join(run.stdout.split())  # whatever the output callback wraps
    assert re.search(r"node2: file /etc/consul\.d/consul\.hcl: file 640 \d+ \d+ \d+ \d+ \d+, was ", flat), (
        run.stdout[-4000:])
    for host in HOSTS:
        if host != "node2":
            assert f"{host}: as the last full run left it, with the same inputs" in flat, run.stdout[-4000:]
        assert recap(run.stdout)[host]["changed"] == 0
    assert "site_state_check_only is true: nothing is changed." in flat


def test_failure_drill():
    """Pull a node: it expires in Consul, its task moves, the proxy keeps
    serving, the reconciler drains it, and it rejoins cleanly and is set
    active again."""
    assert RECONCILE, "settings.yml turns the reconciler on for this drill"

    def drained(run: DrillRun) -> None:
        run.wait_availability(run.report.victim, "Drain", DRAIN_BOUND_S + 30, "drained")

    def reactivated(run: DrillRun) -> None:
        run.wait_availability(run.report.victim, "Active", REACTIVATE_BOUND_S + 30, "reactivated")

    try:
        report = LAB.drill(ttl=TTL, limits=LIMITS, via=LAB.vip, while_down=drained, after_rejoin=reactivated)
    except DrillFailed as failed:
        failed.report.write(REPORTS / "drill.json")
        raise
    summary = report.write(REPORTS / "drill.json")
    before, after = report.before(), report.after()
    assert before and all(r.ok for r in before), "the proxy failed before the drill began"
    assert after and all(r.ok for r in after), f"requests failed after the failover window: {summary}"
    assert report.detection_s is not None and report.detection_s <= DETECTION_BOUND_S, summary
    # Every poll saw the victim's peers alive (or expiring between heartbeats).
    assert all(p.states[h] in ("alive", "expiring") for p in report.polls for h in HOSTS if h != report.victim)
    # picluster-reconcile (on the swarm leader) drained it once Consul called it gone, and set it active once back.
    drained_s, reactivated_s = report.between("expired", "drained"), report.between("rejoined", "reactivated")
    assert drained_s is not None and drained_s <= DRAIN_BOUND_S, summary
    assert reactivated_s is not None and reactivated_s <= REACTIVATE_BOUND_S, summary
    # Rejoined cleanly: one registration per node, no stale swarm node.
    assert LAB.members().ips() == sorted(LAB.address(h) for h in HOSTS)
    assert sorted(n.hostname for n in LAB.swarm_nodes()) == sorted(HOSTS)

