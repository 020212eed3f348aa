"""The dashboard's pure parts: swarm and Consul data in, node cards out; logins."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "roles/dashboard/files/picluster-dashboard.py"
# The app imports the collection's _consistency.py from lib/ beside it; here, from the checkout.
sys.path.insert(0, str(ROOT / "plugins/module_utils"))
sys.path.insert(0, str(ROOT / "collections"))  # the checkout is the collection (collections/ links back)
from ansible_collections.picluster.swarm.plugins.filter.password import scrypt_hash  # noqa: E402

_spec = importlib.util.spec_from_file_location("picluster_dashboard", APP)
assert _spec and _spec.loader
app = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = app  # dataclasses look their module up there
_spec.loader.exec_module(app)

NOW = 1_800_000_000.0


def node(
    nid: str, hostname: str, addr: str, *, role: str = "worker", state: str = "ready", leader: bool = False
) -> dict:
    out = {
        "ID": nid,
        "Spec": {"Role": role, "Availability": "active", "Labels": {"rack": "a"}},
        "Description": {
            "Hostname": hostname,
            "Engine": {"EngineVersion": "20.10.24", "Labels": {"pi": "4"}},
            "Platform": {"Architecture": "aarch64"},
        },
        "Status": {"State": "ready", "Addr": addr},
    }
    if role == "manager":
        raft = "10.0.0.1" if addr == "0.0.0.0" else addr
        out["ManagerStatus"] = {"Leader": leader, "Reachability": "reachable", "Addr": f"{raft}:2377"}
    return out


def task(tid: str, nid: str, sid: str, slot: int | None, *, state: str = "running", desired: str = "running") -> dict:
    return {
        "ID": tid,
        "NodeID": nid,
        "ServiceID": sid,
        "Slot": slot,
        "DesiredState": desired,
        "Status": {
            "State": state,
            "Timestamp": "2027-01-15T08:00:00.123456789Z",
            "ContainerStatus": {"ContainerID": "c" * 64},
        },
        "Spec": {"ContainerSpec": {"Image": "picluster/demo-web:latest@sha256:abc"}},
    }


def member(ip: str, hostname: str, state: str = "alive", left: float | None = 15.0) -> dict:
    return {
        "ip": ip,
        "hostname": hostname,
        "role": "node",
        "engine_version": "20.10.24",
        "labels": {"pi": "4"},
        "state": state,
        "ttl": 20,
        "seconds_left": left,
        "seconds_since_heartbeat": 5.0,
        "heartbeat_iso": "2027-01-15T08:00:00Z",
        "key": f"docker/swarm/nodes/{ip}:2376",
        "address": f"{ip}:2376",
    }


SERVICES = [
    {"ID": "s1", "Spec": {"Name": "demo-web", "Mode": {"Replicated": {"Replicas": 3}}}},
    {"ID": "s2", "Spec": {"Name": "agent", "Mode": {"Global": {}}}},
]
NODES = [node("n2", "node1", "10.0.0.2"), node("n1", "master", "10.0.0.1", role="manager", leader=True)]


def test_cards_join_swarm_nodes_and_members_by_address():
    view = app.build_view(
        [member("10.0.0.2", "node1"), member("10.0.0.1", "master")],
        NODES,
        [task("t1", "n2", "s1", 1), task("t2", "n2", "s1", 2), task("t3", "n1", "s2", None)],
        SERVICES,
        NOW,
    )
    assert [c["name"] for c in view["nodes"]] == ["master", "node1"]  # managers first
    master, node1 = view["nodes"]
    assert master["swarm"]["leader"] and master["role"] == "manager"
    assert node1["membership"]["state"] == "alive" and node1["membership"]["seconds_left"] == 15.0
    assert [t["name"] for t in node1["tasks"]] == ["demo-web.1", "demo-web.2"]
    assert node1["tasks"][0]["image"] == "picluster/demo-web:latest"
    assert node1["tasks"][0]["container_id"] == "c" * 12
    assert master["tasks"][0]["name"] == "agent.n1"  # a global task has no slot
    assert node1["labels"] == {"pi": "4", "rack": "a"}
    assert view["counts"] == {
        "nodes": 2,
        "alive": 2,
        "expiring": 0,
        "expired": 0,
        "missing": 0,
        "ready": 2,
        "disagree": 0,
        "tasks": 3,
        "running": 3,
    }
    assert {c["consistency"]["category"] for c in view["nodes"]} == {"healthy"}
    assert view["services"] == [
        {"name": "agent", "mode": "global", "replicas": None, "running": 1, "labels": {}},
        {"name": "demo-web", "mode": "replicated", "replicas": 3, "running": 2, "labels": {}},
    ]


def test_task_age_comes_from_the_nanosecond_timestamp():
    later = NOW + 100
    view = app.build_view([], NODES, [task("t1", "n2", "s1", 1)], SERVICES, later)
    started = app.parse_docker_time("2027-01-15T08:00:00.123456789Z")
    assert started == NOW + 0.123456
    assert view["nodes"][1]["tasks"][0]["age_s"] == round(later - started, 1) == 99.9
    assert app.parse_docker_time("0001-01-01T00:00:00Z") is None
    assert app.parse_docker_time("garbage") is None


def test_tasks_not_meant_to_run_are_left_out():
    view = app.build_view([], NODES, [task("t1", "n2", "s1", 1, state="shutdown", desired="shutdown")], SERVICES, NOW)
    assert view["nodes"][1]["tasks"] == [] and view["counts"]["tasks"] == 0


def test_a_node_without_a_member_is_missing_and_a_member_without_a_node_still_shows():
    view = app.build_view([member("10.0.0.9", "ghost", state="expired", left=0.0)], NODES, [], SERVICES, NOW)
    by_name = {c["name"]: c for c in view["nodes"]}
    assert by_name["master"]["membership"]["state"] == "missing"
    assert by_name["ghost"]["swarm"] is None and by_name["ghost"]["membership"]["state"] == "expired"
    assert view["counts"]["missing"] == 2 and view["counts"]["expired"] == 1


def test_members_match_by_host_name_when_the_address_differs():
    view = app.build_view([member("192.168.1.2", "node1")], NODES, [], SERVICES, NOW)
    by_name = {c["name"]: c for c in view["nodes"]}
    assert by_name["node1"]["membership"]["state"] == "alive"
    assert len(view["nodes"]) == 2


def test_unreadable_consul_leaves_the_swarm_side():
    view = app.build_view(None, NODES, [], SERVICES, NOW)
    assert {c["membership"]["state"] for c in view["nodes"]} == {"unknown"}
    # A side that could not be read is no disagreement.
    assert {c["consistency"]["category"] for c in view["nodes"]} == {"unknown"}
    assert view["counts"]["disagree"] == 0


def test_unreadable_swarm_leaves_the_consul_side():
    view = app.build_view([member("10.0.0.2", "node1")], None, None, None, NOW)
    assert [c["name"] for c in view["nodes"]] == ["node1"]
    assert view["nodes"][0]["swarm"] is None and view["services"] == []
    assert view["nodes"][0]["consistency"] == {"category": "unknown", "disagree": False, "summary": ""}


def test_a_disagreement_is_judged_as_swarm_consistency_judges_it():
    down = node("n2", "node1", "10.0.0.2")
    down["Status"]["State"] = "down"
    view = app.build_view(
        [member("10.0.0.2", "node1"), member("10.0.0.1", "master", state="expired", left=0.0),
         member("10.0.0.9", "ghost")],
        [down, node("n1", "master", "10.0.0.1", role="manager", leader=True), node("n3", "node3", "10.0.0.3")],
        [], SERVICES, NOW,
    )
    by_name = {c["name"]: c["consistency"] for c in view["nodes"]}
    assert {name: c["category"] for name, c in by_name.items()} == {
        "master": "consul_expired", "node1": "swarm_down", "node3": "swarm_only", "ghost": "consul_only"}
    assert all(c["disagree"] for c in by_name.values()) and view["counts"]["disagree"] == 4
    assert by_name["node1"]["summary"].startswith("node1 (10.0.0.2): alive in Consul but down in the swarm")


def test_manager_reporting_0000_uses_its_raft_address():
    manager = node("n1", "master", "0.0.0.0", role="manager", leader=True)
    assert app.swarm_node_record(manager, NOW)["address"] == "10.0.0.1"


def test_members_age_between_reads():
    aged = app._aged(member("10.0.0.2", "node1", left=6.0), elapsed=2.0, expiring_fraction=0.25)
    assert aged["seconds_left"] == 4.0 and aged["state"] == "expiring"  # under a quarter of 20 s
    assert app._aged(member("10.0.0.2", "node1", left=1.0), 2.0, 0.25)["state"] == "expired"
    assert app._aged(member("10.0.0.2", "node1", left=15.0), 2.0, 0.25)["state"] == "alive"


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# Cheap parameters for the tests; the role's filter uses n=2**15 (docs/roles/dashboard.md).
N = 2**10


def hash_line(password: str, salt: str = "s4lt", n: int = N) -> str:
    """What the role writes: the collection's scrypt_hash filter, so the dashboard is checked against it."""
    return scrypt_hash(password, salt, n=n)


def test_basic_auth_checks_the_scrypt_hash():
    auth = app.Authenticator(app.load_users(f"# comment\n\nadmin:{hash_line('secret')}\n"))
    assert auth.check(header("admin", "secret"))
    assert not auth.check(header("admin", "wrong"))
    assert not auth.check(header("root", "secret"))
    assert not auth.check(None)
    assert not auth.check("Basic !!!notbase64")
    assert not auth.check("Bearer abc")


def test_a_login_is_remembered_for_a_while_never_a_wrong_one():
    auth = app.Authenticator(app.load_users(f"admin:{hash_line('secret')}\n"), remember_s=60)
    assert auth.check(header("admin", "secret"), now=100.0)
    # Remembered: the same header passes without scrypt (the stored login is gone, so only memory can say yes).
    auth.users.clear()
    assert auth.check(header("admin", "secret"), now=150.0)
    assert not auth.check(header("admin", "secret"), now=161.0)  # forgotten after remember_s
    assert not auth.check(header("admin", "wrong"), now=150.0)


def test_a_malformed_password_file_is_refused():
    for text, words in [
        ("admin:only-two\n", "user:scrypt:N:r:p:salt:hexdigest"),
        (f"admin:s4lt:{hashlib.sha256(b's4ltsecret').hexdigest()}\n", "user:scrypt:N:r:p:salt:hexdigest"),
        ("admin:scrypt:1000:8:1:s4lt:" + "ab" * 32 + "\n", "power of two"),
        ("admin:scrypt:1024:8:1:s4lt:nothex\n", "digest"),
    ]:
        try:
            app.load_users(text)
        except ValueError as exc:
            assert words in str(exc), (text, exc)
        else:
            raise AssertionError(f"{text!r} was accepted")


def test_settings_come_from_the_environment():
    settings = app.Settings.from_env(
        {
            "PICLUSTER_DASHBOARD_PORT": "9000",
            "PICLUSTER_DASHBOARD_INTERVAL": "0.5",
            "PICLUSTER_DASHBOARD_AUTH": "none",
            "PICLUSTER_DASHBOARD_TITLE": "",
        }
    )
    assert settings.port == 9000 and settings.interval == 0.5 and settings.auth == "none"
    assert settings.title == "picluster"  # empty means default


def test_the_role_ships_the_collections_consul_code():
    """One client: the image gets the modules' own module_utils, not a copy kept in the role."""
    sources = (ROOT / "roles/dashboard/vars/main.yml").read_text()
    assert "plugins/module_utils/_consul.py" in sources
    assert "plugins/module_utils/_membership.py" in sources
    assert not list((ROOT / "roles/dashboard").rglob("_consul.py"))
