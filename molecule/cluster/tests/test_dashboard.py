"""The dashboard role on the whole cluster: its API against the lab, its page in headless Chromium.

Runs after test_cluster.py (file order) on the same cluster, and leaves it
whole: the node it stops is started again and waited for. Screenshots of the
normal and the degraded page go to build/reports/ (test artefacts).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from cdp import Browser
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from picluster_lab import REPORTS, Lab
from scenario_settings import TTL

LAB = Lab.from_env()

DASHBOARD = "dashboard.picluster.lab"
MARGIN = 15  # polling (1 s collector, 2 s page) plus a loaded 2-core machine
UNPLACEABLE = "node.labels.io.picluster.dashboard==off"


@pytest.fixture(scope="module")
def auth() -> dict[str, str]:
    password_file = LAB.pki_dir("dashboard") / "admin"
    assert password_file.is_file(), f"the role should have kept the generated password in {password_file}"
    password = password_file.read_text().split()[0]
    return {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}


def edge_ca_spki() -> str:
    """The edge CA's key as Chromium names it (base64 of the SHA-256 of its
    SubjectPublicKeyInfo): the browser trusts certificate chains that hold it,
    as a user's browser that trusts the CA's ca.pem does (Chromium has no
    flag for a CA file, and Debian's NSS tools are not installed here)."""
    ca = x509.load_pem_x509_certificate((LAB.pki_dir("edge") / "ca.pem").read_bytes())
    spki = ca.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    answer = LAB.http(DASHBOARD, path, headers=headers, via=LAB.entry_point)
    return answer.status, answer.body


def api(auth: dict[str, str]) -> dict:
    status, body = get("/api/cluster", headers=auth)
    assert status == 200, body
    return json.loads(body)


def running_per_node() -> dict[str, int]:
    """Running tasks of every service, per node, as the swarm CLI on a master sees them."""
    counts: dict[str, int] = {}
    for service in LAB.sh(LAB.live_master(), ["docker", "service", "ls", "--format", "{{.Name}}"]).split():
        for node in LAB.service_tasks(service):
            counts[node] = counts.get(node, 0) + 1
    return counts


def test_nothing_is_shown_without_a_login(auth):
    status, _body = get("/api/cluster")
    assert status == 401
    status, _body = get("/")
    assert status == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:not-the-password").decode()}
    assert get("/api/cluster", headers=wrong)[0] == 401
    assert get("/api/health") == (200, "ok\n")  # health carries no data
    # Only a salted scrypt hash reaches the masters (a slow hash: the work factor travels with it).
    password = base64.b64decode(auth["Authorization"].split()[1]).decode().split(":")[1]
    for master in LAB.hosts("masters"):
        users = LAB.sh(master, ["cat", "/etc/picluster/dashboard/auth/users"])
        assert users.startswith("admin:scrypt:32768:8:1:") and password not in users, users.split(":")[:5]


def test_api_lists_every_node_with_its_membership_swarm_state_and_tasks(auth):
    hosts = sorted(LAB.hosts())
    expected: dict[str, int] = {}

    def agrees() -> bool:
        nonlocal expected
        expected = running_per_node()
        data = api(auth)
        return {n["name"]: n["running"] for n in data["nodes"]} == {h: expected.get(h, 0) for h in hosts}

    LAB.wait_until("the dashboard's task counts matching the swarm's", agrees, limit=30, interval=2)
    data = api(auth)
    assert data["sources"]["consul"]["ok"] and data["sources"]["docker"]["ok"], data["sources"]
    masters = LAB.hosts("masters")
    assert sorted(n["name"] for n in data["nodes"][: len(masters)]) == masters  # managers first
    assert sorted(n["name"] for n in data["nodes"]) == hosts
    consul = LAB.members()
    for node in data["nodes"]:
        assert node["address"] == LAB.address(node["name"])
        assert node["membership"]["state"] == LAB.member_state(node["name"], consul) == "alive", node
        assert 0 < node["membership"]["seconds_left"] <= node["membership"]["ttl"] == TTL
        assert node["swarm"]["status"] == "ready" and node["swarm"]["availability"] == "active"
        assert node["engine_version"], node
    assert data["counts"]["alive"] == len(hosts) and data["counts"]["ready"] == len(hosts)
    by_name = {n["name"]: n for n in data["nodes"]}
    assert len([m for m in masters if by_name[m]["swarm"]["leader"]]) == 1
    assert all(by_name[m]["role"] == "manager" for m in masters)
    # A global service: one dashboard task on every master, none elsewhere.
    for name, node in by_name.items():
        dashboard_tasks = [t for t in node["tasks"] if t["service"] == "picluster-dashboard"]
        assert [t["state"] for t in dashboard_tasks] == (["running"] if name in masters else []), node
    demo = next(s for s in data["services"] if s["name"] == "demo-web")
    assert demo["replicas"] == demo["running"] == 3


def test_the_dashboard_reads_the_swarm_read_only_and_holds_no_docker_key():
    """On every master the dashboard's container (facing the LAN through the proxy) has no
    engine socket and no client key; its read-only API lists the swarm, creates and execs nothing."""
    socket = "/run/picluster/docker-ro/docker.sock"
    asks = [("GET", "/nodes"), ("GET", "/services"), ("POST", "/containers/create"),
            ("POST", "/services/create"), ("GET", "/secrets"), ("DELETE", "/services/picluster-dashboard")]
    for master in LAB.hosts("masters"):
        found = LAB.sh(master, ["docker", "ps", "-q", "--filter",
                                "label=com.docker.swarm.service.name=picluster-dashboard"]).split()
        assert len(found) == 1, f"{master}: {found}"
        container = found[0]
        assert LAB.sh(master, ["docker", "exec", container, "printenv", "PICLUSTER_DASHBOARD_DOCKER_URL"]).strip() \
            == "unix://" + socket
        got = LAB.docker_api_from(master, container, socket, asks)
        assert got["engine_socket_mounted"] is False, got
        assert got["GET /nodes"][0] == got["GET /services"][0] == 200, got
        for method, path in asks[2:]:
            assert got[f"{method} {path}"][0] == 403, (master, method, path, got)
        files = LAB.sh(master, ["find", "/etc/picluster/dashboard", "-name", "*.pem"]).split()
        assert files == ["/etc/picluster/dashboard/consul-ca.pem"], f"{master}: {files}"
    assert "picluster-dashboard" in LAB.sh(LAB.live_master(), ["docker", "service", "ls", "--format", "{{.Name}}"])


def test_page_shows_the_cluster_a_stopped_node_turns_expired_and_stale_data_is_marked(auth):
    hosts = sorted(LAB.hosts())
    victim = hosts[-1]  # a worker: names sort master1 < ... < node1 < ... < nodeN
    assert victim not in LAB.hosts("masters")
    report: dict = {"victim": victim, "ttl_s": TTL}
    with Browser(extra_flags=[f"--host-resolver-rules=MAP {DASHBOARD} {LAB.entry_point}",
                              f"--ignore-certificate-errors-spki-list={edge_ca_spki()}"]) as browser:
        page = browser.open(1280, 900, headers=auth)
        # Typed without a scheme, as a user would: plain HTTP, sent on to HTTPS.
        page.navigate(f"http://{DASHBOARD}/")
        _ok, report["on_https_s"] = page.wait_for(f"location.href === 'https://{DASHBOARD}/'", limit=15)
        _ok, report["first_paint_s"] = page.wait_for(
            "document.body.dataset.ready === 'true'"
            f" && document.querySelectorAll('article.node').length === {len(hosts)}",
            limit=30,
        )
        cards = page.evaluate(
            "Array.from(document.querySelectorAll('article.node')).map(c => ({name: c.dataset.node,"
            " state: c.dataset.state, running: Number(c.dataset.running),"
            " tasks: c.querySelectorAll('li[data-task-state]').length}))"
        )
        assert sorted(c["name"] for c in cards) == hosts
        assert all(c["state"] == "alive" for c in cards), cards
        expected = running_per_node()
        assert {c["name"]: c["running"] for c in cards} == {h: expected.get(h, 0) for h in hosts}, cards
        assert page.evaluate("document.body.dataset.stale") == "false"
        page.screenshot(REPORTS / "dashboard-normal.png")

        # A phone: one column, nothing wider than the screen.
        page.resize(390, 844, mobile=True)
        time.sleep(0.5)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(REPORTS / "dashboard-phone.png")
        # A projector: the same grid, larger type, still no sideways scrolling.
        page.resize(1920, 1080)
        time.sleep(0.5)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1920
        assert page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)") > 16
        page.screenshot(REPORTS / "dashboard-projector.png")
        page.resize(1280, 900)

        page.evaluate("window.__picluster_same_page = 'yes'")
        t_kill = LAB.kill(victim)
        try:
            # Expired (its TTL lapsed) or missing (its own agent died with it and
            # took its session and key along): which comes first is a race.
            card = f"document.querySelector('article.node[data-node=\"{victim}\"]')"
            try:
                report["state_on_page"], report["expired_on_page_s"] = page.wait_for(
                    f"['expired', 'missing'].includes({card}.dataset.state) && {card}.dataset.state",
                    limit=2 * TTL + MARGIN,  # Consul drops a lapsed session within 2 x TTL
                )
            except AssertionError as err:
                api = LAB.http(DASHBOARD, "/api/cluster", via=LAB.entry_point, headers=auth)
                seen = next((n for n in api.json()["nodes"] if n["name"] == victim), None) if api.ok else api.status
                raise AssertionError(f"{err}; the card says {page.evaluate(card + '.dataset.state')!r}, "
                                     f"the API {seen!r}") from None
            assert page.evaluate("window.__picluster_same_page") == "yes", "the page reloaded"
            others = page.evaluate(
                "Array.from(document.querySelectorAll('article.node'))"
                f".filter(c => c.dataset.node !== '{victim}').map(c => c.dataset.state)"
            )
            assert set(others) <= {"alive", "expiring"}, others
            time.sleep(1)
            page.screenshot(REPORTS / "dashboard-degraded.png")
        finally:
            LAB.start(victim)
        _ok, report["alive_again_on_page_s"] = page.wait_for(
            f"document.querySelector('article.node[data-node=\"{victim}\"]').dataset.state === 'alive'", limit=180
        )
        assert page.evaluate("window.__picluster_same_page") == "yes", "the page reloaded"
        report["kill_to_alive_s"] = round(time.monotonic() - t_kill, 1)

        # The page's own data going stale: take the dashboard away (a global service:
        # a placement no node meets stops every task), then back.
        LAB.sh(LAB.live_master(), ["docker", "service", "update", "-d", "--constraint-add", UNPLACEABLE,
                                   "picluster-dashboard"])
        try:
            _ok, report["stale_shown_s"] = page.wait_for("document.body.dataset.stale === 'true'", limit=30)
            banner = page.evaluate("document.getElementById('banner').textContent")
            assert "what you see is old" in banner, banner
            # Countdowns froze with the data: losing the app expires no node.
            states = page.evaluate("Array.from(document.querySelectorAll('article.node')).map(c => c.dataset.state)")
            assert "expired" not in states, states
            page.screenshot(REPORTS / "dashboard-stale.png")
        finally:
            LAB.sh(LAB.live_master(), ["docker", "service", "update", "-d", "--constraint-rm", UNPLACEABLE,
                                       "picluster-dashboard"])
        _ok, report["fresh_again_s"] = page.wait_for("document.body.dataset.stale === 'false'", limit=90)
    LAB.wait_until(f"{victim} alive in Consul again", lambda: LAB.member_state(victim) == "alive", limit=60)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "dashboard.json").write_text(
        json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in report.items()}, indent=2) + "\n"
    )
    print(json.dumps(report))
    assert report["expired_on_page_s"] <= 2 * TTL + MARGIN
