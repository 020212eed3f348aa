"""Consul secure by default (issue 15), against the scenario's real agents.

First, the upgrade: prepare.yml made the cluster with the old defaults (no
TLS, no ACLs) and started a membership watch; the converge upgraded it in
place. The watch must have seen the change (plain HTTP, then HTTPS with a
token) and no member out of Consul for as long as one TTL.

From this machine (another host on the lab's LAN) and from a lab node: nothing
anonymous gets through, a node's heartbeat token reaches its own membership
key only, the read-only token reads but never writes, plain HTTP answers on
127.0.0.1 only, and HTTPS needs the Consul CA. Bad input to the collection's
modules (a malformed token, an unknown one, one without rights, a wrong CA)
ends in a message that says what to fix, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from picluster_lab import REPORTS, Lab, LabError, stop_watch
from picluster_lab.consul import Answer, ConsulAccess
from picluster_lab.membership import run_module

LAB = Lab.from_env()
ACCESS: ConsulAccess = LAB.consul_access
PREFIX = "docker/swarm/nodes"
ENGINE_PORT = 2376
REFUSED = (403,)
TTL = int(yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())
          ["provisioner"]["inventory"]["group_vars"]["all"]["swarm_heartbeat_ttl"])


def key_of(host: str) -> str:
    return f"{PREFIX}/{LAB.address(host)}:{ENGINE_PORT}"


def master() -> str:
    return LAB.address("master")


def refused_or_empty(answer: Answer) -> bool:
    """403, or a listing ACLs filtered down to nothing (how Consul answers reads of lists: 200 with an
    empty list, or 404 for a KV prefix whose every key is hidden)."""
    if answer.status in REFUSED:
        return True
    if answer.status == 404:
        return not answer.body.strip()
    return answer.status == 200 and answer.json() in ([], {}, None)


@pytest.fixture(scope="module", autouse=True)
def secured() -> None:
    assert ACCESS.ca is not None, f"no Consul CA in {ACCESS.pki}: the consul role's TLS default did not run"
    assert ACCESS.token("management") and ACCESS.token("read"), f"no tokens in {ACCESS.pki}/tokens"


def test_upgrade_from_the_old_defaults_kept_every_member():
    report = stop_watch(LAB.name)
    summary = {k: v for k, v in report.items() if k != "timeline"}
    (REPORTS / "swarm-upgrade.json").write_text(json.dumps(summary, indent=1))
    print("upgrade watch:", json.dumps(summary))
    ways = [poll["way"] for poll in report["timeline"] if poll["ok"]]
    # It was a real upgrade: read the old way first, the secure way at the end.
    assert ways and ways[0] == "http" and ways[-1] == "https+token", sorted(set(ways))
    assert len(summary.get("members", ())) == len(LAB.hosts()), summary  # the watch's figures, one per host
    assert report["longest_not_alive_s"] < TTL, summary


def test_controller_files_are_owner_only():
    for path in [ACCESS.pki, ACCESS.pki / "tokens"]:
        assert path.stat().st_mode & 0o777 == 0o700, path
    for path in [ACCESS.pki / "ca-key.pem", *(ACCESS.pki / "tokens").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o600, path


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", f"/v1/kv/{PREFIX}/10.9.9.9:2376", "forged"),
    ("DELETE", "/v1/kv/{node2_key}", None),
    ("PUT", "/v1/session/create", json.dumps({"Node": "node2", "TTL": "10s"})),
    ("GET", "/v1/acl/tokens", None),
    ("GET", "/v1/acl/policies", None),
    ("PUT", "/v1/agent/leave", None),
])
def test_anonymous_writes_and_acl_reads_refused(method, path, body):
    answer = ACCESS.request(master(), path.format(node2_key=key_of("node2")), method=method, body=body)
    assert answer.status in REFUSED, (method, path, answer)


@pytest.mark.parametrize("path", [
    "/v1/agent/members",
    f"/v1/kv/{PREFIX}?recurse=true",
    "/v1/session/list",
    "/v1/internal/ui/nodes",  # what the UI shows: without a token, nothing
    "/v1/catalog/nodes",
])
def test_anonymous_reads_get_nothing(path):
    answer = ACCESS.request(master(), path)
    assert refused_or_empty(answer), (path, answer)


def test_node2_key_survived_the_anonymous_delete():
    answer = ACCESS.request(master(), f"/v1/kv/{key_of('node2')}", token=ACCESS.token("read"))
    assert answer.status == 200, answer


def test_anonymous_refused_from_another_lab_node():
    # node1 has the readable CA copy; it writes over HTTPS to the master's LAN address without a token.
    out = LAB.sh("node1", [
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", "/etc/picluster/consul-ca.pem",
        "-X", "PUT", "--data", "forged", f"https://{master()}:8501/v1/kv/{key_of('node2')}",
    ], check=False)
    assert out.strip() == "403", out


@pytest.mark.parametrize("host", ["master", "node1"])
def test_plain_http_closed_on_lan_address(host):
    answer = ACCESS.request(LAB.address(host), "/v1/status/leader", tls=False)
    assert answer.status == 0, answer


@pytest.mark.parametrize("host", ["master", "node1"])
def test_plain_http_open_on_loopback_inside_the_node(host):
    out = LAB.sh(host, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8500/v1/status/leader"],
                 check=False)
    assert out.strip() == "200", out


def test_client_without_the_ca_cannot_talk_https():
    answer = ACCESS.request(master(), "/v1/status/leader", ca=None)
    assert answer.status == 0 and "CERTIFICATE_VERIFY_FAILED" in answer.body, answer


def test_heartbeat_token_reaches_only_its_own_key():
    token = ACCESS.token("heartbeat-node1")
    assert token
    other = key_of("node2")
    assert ACCESS.request(master(), f"/v1/kv/{other}", method="PUT", body="forged", token=token).status in REFUSED
    assert ACCESS.request(master(), f"/v1/kv/{other}", method="DELETE", token=token).status in REFUSED
    assert ACCESS.request(master(), f"/v1/kv/{PREFIX}/10.9.9.9:2376", method="PUT", body="x",
                          token=token).status in REFUSED
    # node2's session (what keeps its key alive) cannot be renewed or destroyed with node1's token.
    held = ACCESS.request(master(), f"/v1/kv/{other}", token=ACCESS.token("read")).json()
    session = held[0].get("Session")
    assert session, held
    assert ACCESS.request(master(), f"/v1/session/renew/{session}", method="PUT", token=token).status in REFUSED
    assert ACCESS.request(master(), f"/v1/session/destroy/{session}", method="PUT", token=token).status in REFUSED
    assert ACCESS.request(master(), "/v1/session/create", method="PUT", token=token,
                          body=json.dumps({"Node": "node2", "TTL": "10s"})).status in REFUSED
    # Its own node: allowed (the heartbeat's job), and cleaned up at once.
    own = ACCESS.request(master(), "/v1/session/create", method="PUT", token=token,
                         body=json.dumps({"Node": "node1", "TTL": "10s", "Behavior": "delete"}))
    assert own.status == 200, own
    ACCESS.request(master(), f"/v1/session/destroy/{own.json()['ID']}", method="PUT", token=token)


def test_read_token_lists_members_but_cannot_write():
    token = ACCESS.token("read")
    listing = ACCESS.request(master(), f"/v1/kv/{PREFIX}?recurse=true", token=token)
    assert listing.status == 200 and len(listing.json()) == 3, listing
    assert ACCESS.request(master(), f"/v1/kv/{key_of('node2')}", method="PUT", body="x", token=token).status in REFUSED
    assert ACCESS.request(master(), f"/v1/kv/{key_of('node2')}", method="DELETE", token=token).status in REFUSED
    assert ACCESS.request(master(), "/v1/acl/tokens", token=token).status in REFUSED
    assert len(LAB.members().members) == 3


def module_error(**options: object) -> str:
    """swarm_members' failure message with these options (no token from the environment)."""
    with pytest.raises(LabError) as failure:
        run_module(master(), {**ACCESS.module_options(master()), **options}, timeout=90)
    message = str(failure.value)
    assert "Traceback" not in message, message
    return message


@pytest.mark.parametrize(("token", "says"), [
    ("not-a-token", "token"),
    (str(uuid.uuid4()), "ACL not found"),
])
def test_bad_token_names_the_fix(token, says):
    message = module_error(token=token)
    assert says in message and "CONSUL_HTTP_TOKEN" in message, message


def test_token_without_rights_names_the_fix():
    # node1's agent token: its node identity, no right to the membership keys.
    message = module_error(token=ACCESS.token("agent-node1"))
    assert "token" in message and "CONSUL_HTTP_TOKEN" in message, message


def test_wrong_ca_names_the_fix(tmp_path: Path):
    # Another CA altogether (as the Docker CA would be): the server's certificate does not chain to it.
    wrong = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(tmp_path / "other-ca-key.pem"), "-out", str(wrong), "-days", "1",
                    "-subj", "/CN=some other CA"], check=True, capture_output=True)
    message = module_error(token=ACCESS.token("read"), ca_path=str(wrong))
    assert "ca_path" in message and "CONSUL_CACERT" in message, message
