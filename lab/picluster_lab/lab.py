"""`Lab(name)`: one lab as the tests, the bench and the CLI see it.

Everything it knows about hosts, groups, addresses, container names and the
connection comes from the inventory `up` wrote (inventory.py). Nodes are
reached with `docker exec` (the inventory's community.docker.docker
connection: the lab's back door, also in a lab whose playbooks run over SSH),
HTTP goes to a node's lab address (the lab network is a local bridge), and
Consul membership comes from our own swarm_members module.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import controller, inventory, membership
from ._common import ROOT, LabError, docker
from ._common import wait_until as _wait_until
from .consul import ConsulAccess
from .controller import PLAYBOOK_TIMEOUT, PLAYBOOKS
from .drill import DrillLimits, DrillReport, DrillRun, kill_a_worker, kill_the_first_master
from .membership import Membership

DOCKER_CONNECTION = "community.docker.docker"


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0 when nothing answered
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class SwarmNode:
    hostname: str
    status: str  # Ready, Down...
    availability: str  # Active, Drain, Pause
    manager_status: str  # Leader, Reachable, Unreachable, or "" for a worker
    engine_version: str


# A run under Mitogen: its strategy, found by name (ansible.cfg says the same for `make lab`).
MITOGEN_ENV = {"ANSIBLE_STRATEGY": "mitogen_linear", "ANSIBLE_STRATEGY_PLUGINS": str(ROOT / "tools" / "mitogen")}


@dataclass(frozen=True)
class PlaybookRun:
    """An ansible or ansible-playbook run against the lab: its exit code, output and PLAY RECAP."""

    returncode: int
    output: str
    recap: dict[str, dict[str, int]]

    def total(self, counter: str) -> int:
        return sum(counts.get(counter, 0) for counts in self.recap.values())


# Run by Lab.docker_api_from inside a container: argv = socket, [[method, path], ...].
_DOCKER_API_PROBE = r"""
import http.client, json, os, socket, sys
path = sys.argv[1]
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
out = {"engine_socket_mounted": os.path.exists("/var/run/docker.sock")}
for method, target in json.loads(sys.argv[2]):
    conn = Conn("docker", timeout=10)
    try:
        conn.request(method, target, body=b"{}" if method == "POST" else None,
                     headers={"Content-Type": "application/json"} if method == "POST" else {})
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused on its headers and closed before the body came (seen under load): the answer is there
    answer = conn.getresponse()
    out[method + " " + target] = [answer.status, answer.read()[:300].decode(errors="replace")]
    conn.close()
print(json.dumps(out))
"""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is returned as the answer (an HTTPError with its status), not followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0917 - urllib's signature
        return None


class _SameTargetRedirect(urllib.request.HTTPRedirectHandler):
    """Follows a redirect to the same address it was asked of (the Location's
    host becomes the Host header): the lab's names are in no DNS."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0917 - urllib's signature
        parts = urllib.parse.urlsplit(newurl)
        address = urllib.parse.urlsplit("//" + self.target).hostname or self.target
        netloc = f"{address}:{parts.port}" if parts.port else address
        again = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        new = super().redirect_request(req, fp, code, msg, headers, again)
        if new is not None and parts.hostname:
            new.add_unredirected_header("Host", parts.hostname)
            new.headers.pop("Host", None)
        return new


class _ServerNameConnection(http.client.HTTPSConnection):
    """HTTPS to an address, with the TLS server name (SNI, and the name the
    certificate is checked against) given apart: the Host header's name."""

    def __init__(self, host: str, *, server_name: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


class _ServerNameHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(context=context)
        self.server_name = server_name

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_ServerNameConnection, req, context=self._context, server_name=self.server_name)


class Lab:
    """A lab that `python3 lab up` brought up (read from its inventory)."""

    def __init__(self, name: str, *, playbook_inventory: Path | None = None) -> None:
        self.name = name
        self.inventory = inventory.read(inventory.default_inventory_dir(name), name)
        self._hosts = {h.name: h for h in self.inventory.hosts}
        # Where the playbooks ran from (their controller-side PKI lives beside
        # it): the lab's own inventory, or molecule's for a scenario.
        self.playbook_inventory = playbook_inventory or self.inventory.path

    @classmethod
    def from_env(cls, scenario: str | None = None) -> Lab:
        """The lab a test runs against: PICLUSTER_TEST_LAB if set (a `make lab`
        cluster, while working on a test), else the molecule scenario's. Its
        playbooks ran through PICLUSTER_TEST_INVENTORY if set, else the lab's SSH
        inventory when it has one (`up --ssh`: the user's path), else molecule's."""
        scenario = scenario or os.environ.get("MOLECULE_SCENARIO_NAME")
        name = os.environ.get("PICLUSTER_TEST_LAB") or (scenario and inventory.molecule_lab_name(scenario))
        if not name:
            raise LabError("which lab? set PICLUSTER_TEST_LAB, or run under molecule (it sets MOLECULE_SCENARIO_NAME)")
        lab = cls(name)
        playbooks = os.environ.get("PICLUSTER_TEST_INVENTORY") or (lab.ssh and str(lab.ssh.inventory)) or \
            os.environ.get("MOLECULE_INVENTORY_FILE")
        if playbooks:
            lab.playbook_inventory = Path(playbooks)
        return lab

    # -- what the inventory says ------------------------------------------------

    def hosts(self, group: str | None = None) -> list[str]:
        """Host names in address order (masters first), of one group or all."""
        return [h.name for h in self.inventory.hosts if group is None or h.group == group]

    def group(self, host: str) -> str:
        return self._host(host).group

    def address(self, host: str) -> str:
        return self._host(host).address

    def container(self, host: str) -> str:
        return self._host(host).container

    def cidr(self, host: str) -> str:
        """The node's address with the lab network's prefix (what a static address setting holds)."""
        return f"{self.address(host)}/{ipaddress.ip_network(self.inventory.subnet).prefixlen}"

    @property
    def gateway(self) -> str:
        """The lab network's gateway: the bridge's first address, as Docker sets it."""
        return str(next(ipaddress.ip_network(self.inventory.subnet).hosts()))

    @property
    def vip(self) -> str:
        """The cluster's virtual IP (two masters or more), else an empty string."""
        return self.inventory.vip

    @property
    def entry_point(self) -> str:
        """Where users send requests: the virtual IP, else the first master's address."""
        return self.vip or self.address(self.first_master)

    def live_master(self, *, besides: Sequence[str] = ()) -> str:
        """The first master whose node runs (a drill may have killed the first one)."""
        for master in self.hosts("masters"):
            if master not in besides and self.is_running(master):
                return master
        raise LabError(f"lab '{self.name}': no master runs (besides {list(besides)})")

    def vip_holder(self) -> str:
        """The master that holds the virtual IP now, or '' (none, or no virtual IP)."""
        if not self.vip:
            return ""
        for master in self.hosts("masters"):
            if self.is_running(master) and f" {self.vip}/" in self.run(master, ["ip", "-4", "-o", "addr"]).stdout:
                return master
        return ""

    @property
    def first_master(self) -> str:
        masters = self.hosts("masters")
        if not masters:
            raise LabError(f"lab '{self.name}' has no masters in {self.inventory.path}")
        return masters[0]

    @property
    def ssh(self) -> inventory.SshAccess | None:
        """The user's way in (`up --ssh`): the pi user, the controller user, their key and inventory."""
        return self.inventory.ssh

    def pki_dir(self, component: str) -> Path:
        """Controller-side PKI a role kept beside the playbooks' inventory
        (pki/docker: the cluster CA; pki/dashboard: the dashboard login)."""
        base = self.playbook_inventory
        return (base if base.is_dir() else base.parent) / "pki" / component

    @property
    def consul_access(self) -> ConsulAccess:
        """How this host reaches the lab's Consul (HTTPS, CA and tokens when the consul role made them)."""
        return ConsulAccess(self.pki_dir("consul"))

    def consul(self, host: str, args: Sequence[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The consul CLI on a node, against its own agent, with the management token (given on standard input,
        never on a command line). Never raises on its exit code."""
        token = self.consul_access.token("management") or ""
        script = 'read -r CONSUL_HTTP_TOKEN; [ -n "$CONSUL_HTTP_TOKEN" ] && export CONSUL_HTTP_TOKEN; exec consul "$@"'
        return self.run(host, ["sh", "-c", script, "consul", *args], timeout=timeout, input_text=token + "\n")

    def mitogen_inventory(self, directory: Path) -> Path:
        """Write the inventory source that runs this lab's hosts under Mitogen
        (`-i <lab's inventory> -i <this>`, with ANSIBLE_STRATEGY=mitogen_linear); return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}-mitogen.yml"
        path.write_text(inventory.mitogen_overlay(list(self.inventory.hosts)))
        return path

    def testinfra_hosts(self, group: str | None = None) -> list[str]:
        """testinfra host specs over the playbooks' inventory."""
        return [self.testinfra_spec(h) for h in self.hosts(group)]

    def testinfra_spec(self, host: str) -> str:
        return f"ansible://{self._host(host).name}?ansible_inventory={self.playbook_inventory}"

    def _host(self, host: str) -> inventory.Host:
        try:
            return self._hosts[host]
        except KeyError:
            raise LabError(f"lab '{self.name}' has no host {host!r}; it has {sorted(self._hosts)}") from None

    # -- running things on nodes --------------------------------------------------

    def run(
        self, host: str, cmd: str | Sequence[str], *, timeout: float = 60, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on a node (a string goes through `sh -c`); never raises on its exit code."""
        if self.inventory.connection != DOCKER_CONNECTION:
            raise LabError(f"lab '{self.name}': connection {self.inventory.connection} is not supported yet")
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        interactive = ["-i"] if input_text is not None else []
        return docker("exec", *interactive, self.container(host), *argv, check=False, timeout=timeout,
                      input_text=input_text)

    def sh(self, host: str, cmd: str | Sequence[str], *, check: bool = True, timeout: float = 60) -> str:
        """A command's standard output on a node; LabError if it fails (when check is set)."""
        proc = self.run(host, cmd, timeout=timeout)
        if check and proc.returncode != 0:
            shown = cmd if isinstance(cmd, str) else " ".join(cmd)
            output = proc.stderr.strip() or proc.stdout.strip()
            raise LabError(f"{host}: `{shown}` failed ({proc.returncode}): {output}")
        return proc.stdout

    @staticmethod
    def program_image_command(program: str, tag: str) -> str:
        """A shell command that, on a node, imports a one-program image `tag` made of
        /usr/bin/<program> and the libraries ldd names: of the node's own
        architecture, with no registry (none is reachable from the lab)."""
        return (f"tar -C / -ch usr/bin/{program} $(ldd /usr/bin/{program} | grep -o '/[^ ]*' | sort -u"
                f" | sed 's#^/##') | docker import - {tag} >/dev/null")

    def program_image(self, host: str, program: str) -> str:
        """Import the one-program image (program_image_command) on `host`; return its tag."""
        tag = f"lab-probe-{program}:1"
        self.sh(host, ["sh", "-c", self.program_image_command(program, tag)], timeout=180)
        return tag

    def container_address(self, host: str, container: str, network: str) -> str:
        """The address a container on `host` has on one of its Docker networks (an overlay's, say)."""
        fmt = "{{(index .NetworkSettings.Networks " + json.dumps(network) + ").IPAddress}}"
        return self.sh(host, ["docker", "inspect", "-f", fmt, container]).strip()

    def docker_api_from(self, host: str, container: str, socket_path: str,
                        asks: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """From inside `container` on `host` (with its own python3 and user):
        each (method, path) asked of the Docker API at `socket_path`, as
        {"METHOD path": [status, start of the answer]}, plus whether the
        engine's own socket is there ("engine_socket_mounted")."""
        out = self.sh(host, ["docker", "exec", container, "python3", "-c", _DOCKER_API_PROBE, socket_path,
                             json.dumps([list(ask) for ask in asks])])
        return json.loads(out)

    def ansible(
        self, command: Sequence[str], *, mitogen: bool = False, logs: Path | None = None, timeout: float = 1500
    ) -> PlaybookRun:
        """Run `ansible-playbook PLAYBOOK` or `ansible PATTERN -m ...` (command) against the
        playbooks' inventory (the lab's, or molecule's in a scenario); under Mitogen's
        mitogen_linear with `mitogen` (its inventory source goes to `logs`). Never
        raises on the exit code."""
        sources = [str(self.playbook_inventory)]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        if mitogen:
            sources.append(str(self.mitogen_inventory(logs or ROOT / "build" / "labs" / self.name)))
            env.update(MITOGEN_ENV)
        argv = [command[0], *(arg for source in sources for arg in ("-i", source)), *command[1:]]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, controller.recap(proc.stdout))

    def playbook(
        self, path: Path, *, mitogen: bool = False, logs: Path | None = None, timeout: float = 1500
    ) -> PlaybookRun:
        """`ansible-playbook PATH` against the lab (see ansible())."""
        return self.ansible(["ansible-playbook", str(path)], mitogen=mitogen, logs=logs, timeout=timeout)

    def kill(self, host: str) -> float:
        """Pull the node's plug (`docker kill`); return the monotonic time it returned."""
        docker("kill", self.container(host), timeout=60)
        return time.monotonic()

    def start(self, host: str) -> float:
        """Power the node on again (`docker start`); return the monotonic time it returned."""
        docker("start", self.container(host), timeout=60)
        return time.monotonic()

    def restart(self, host: str) -> float:
        """Power-cycle the node (`docker restart`); return the monotonic time it returned."""
        docker("restart", self.container(host), timeout=120)
        return time.monotonic()

    def restart_count(self, host: str) -> int:
        """How often the node's container restarted by itself (its restart policy: a reboot from inside)."""
        return int(docker("inspect", "-f", "{{.RestartCount}}", self.container(host)).stdout.strip() or 0)

    def is_running(self, host: str) -> bool:
        proc = docker("inspect", "-f", "{{.State.Running}}", self.container(host), check=False)
        return proc.stdout.strip() == "true"

    def controller(self, *, settings: Path | None = None, leave_out: Sequence[str] = (),
                   mitogen: bool = False) -> controller.Controller:
        """The lab's controller made ready the way a user sets one up (controller.py):
        the controller user's directory, a venv of requirements.txt only (less
        `leave_out`; plus Mitogen, switched on, with `mitogen`), a fresh
        collections path with the collection from its tarball."""
        if not self.ssh:
            raise LabError(f"lab '{self.name}' has no SSH access; bring it up with `python3 lab up --ssh`")
        return controller.prepare(self.ssh, leave_out=leave_out, settings=settings, mitogen=mitogen)

    def user_run(
        self,
        playbooks: Sequence[str] = PLAYBOOKS,
        args: Sequence[str] = (),
        *,
        settings: Path | None = None,
        leave_out: Sequence[str] = (),
        mitogen: bool = False,
        timeout: float = PLAYBOOK_TIMEOUT,
        echo: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run playbooks the way a user does: as the controller user, over SSH to pi,
        with the collection from its tarball (under Mitogen with `mitogen`). Never
        raises on ansible-playbook's exit code; its output (stdout and stderr
        together) is in .stdout."""
        user = self.controller(settings=settings, leave_out=leave_out, mitogen=mitogen)
        return user.playbook(playbooks, args, timeout=timeout, echo=echo)

    # -- the cluster on the lab ----------------------------------------------------

    def members(self, via: str | None = None, **options: Any) -> Membership:
        """Consul's membership, from picluster.swarm.swarm_members run against
        the Consul agent on `via` (default: the first master that runs). Options
        go to the module (include_expired is on unless given). With the consul
        role's TLS and ACLs, over HTTPS with its CA and read-only token."""
        target = self._target(via or self.live_master())
        access = self.consul_access
        return membership.run_module(target, {**access.module_options(target), **options},
                                     extra_env=access.module_env())

    def member_state(self, host: str, members: Membership | None = None) -> str:
        """alive, expiring, expired, or `absent` (Consul holds no key for it)."""
        return (members or self.members()).state_of(self.address(host))

    def consistency(self, via: str | None = None, **options: Any) -> dict[str, Any]:
        """picluster.swarm.swarm_consistency's result (failed or not), run on this host against
        `via` (default: the first master that runs): its Consul agent and its engine over TLS with the
        docker role's client certificate, as a user would from the controller."""
        connection = self._swarm_connection(via)
        return membership.run_collection_module("picluster.swarm.swarm_consistency", {**connection, **options},
                                                extra_env=self.consul_access.module_env())

    def reconcile(self, via: str | None = None, *, check: bool = False, diff: bool = False,
                  **options: Any) -> dict[str, Any]:
        """picluster.swarm.swarm_reconcile's result (failed or not), connected as consistency()."""
        connection = self._swarm_connection(via)
        return membership.run_collection_module("picluster.swarm.swarm_reconcile", {**connection, **options},
                                                check=check, diff=diff, extra_env=self.consul_access.module_env())

    def _swarm_connection(self, via: str | None) -> dict[str, Any]:
        """The Consul agent on `via` with the consul role's CA and token, and its engine over TLS with the
        docker role's client certificate."""
        target = self._target(via or self.live_master())
        access = self.consul_access
        return {**access.module_options(target), "docker_host": f"tcp://{target}:2376",
                "docker_cert_path": str(self.pki_dir("docker"))}

    def is_whole(self) -> bool:
        """Every node runs, is alive in Consul and Ready in the swarm, every
        master votes in Consul's raft again and is a reachable swarm manager:
        the cluster can lose any one master again. (A Consul server back from
        an outage is a non-voter until autopilot promotes it, some 10 s after
        it is stable; losing another server before that leaves no quorum.)
        A read that fails while the cluster settles counts as "not yet"."""
        hosts = self.hosts()
        masters = set(self.hosts("masters"))
        try:
            if not all(self.is_running(h) for h in hosts):
                return False
            members = self.members()
            if any(members.state_of(self.address(h)) != "alive" for h in hosts):
                return False
            if not masters <= self.consul_voters():
                return False
            nodes = self.swarm_nodes()
        except LabError:
            return False
        ready = {n.hostname for n in nodes if n.status == "Ready"}
        managing = {n.hostname for n in nodes if n.manager_status in ("Leader", "Reachable")}
        return set(hosts) <= ready and masters <= managing

    def consul_voters(self) -> set[str]:
        """The Consul servers that vote in raft now, as the leader tells it (raises LabError without one)."""
        return {peer[0] for peer in self.raft_peers(self.live_master()) if len(peer) > 4 and peer[4] == "true"}

    def raft_peers(self, via: str) -> list[list[str]]:
        """`consul operator raft list-peers` on `via`, one row of columns per server:
        node, ID, address, state, voter, ... (raises LabError without a leader)."""
        peers = self.sh_consul(via, ["operator", "raft", "list-peers"])
        return [line.split() for line in peers.splitlines()[1:] if line.strip()]

    def wait_whole(self, limit: float = 180) -> float:
        """Until the cluster is whole again (see is_whole); seconds taken."""
        return _wait_until(f"lab '{self.name}' whole (every node alive in Consul and Ready in the swarm, every master "
                           "a Consul voter and a reachable manager)",
                           self.is_whole, limit, 2)

    def consul_leader(self, via: str | None = None) -> str:
        """The raft leader's address:port as a server's local agent tells it ('' when there is none)."""
        proc = self.run(via or self.live_master(), ["curl", "-s", "-m", "5", "http://127.0.0.1:8500/v1/status/leader"])
        return proc.stdout.strip().strip('"') if proc.returncode == 0 else ""

    def transfer_consul_leadership(self, master: str) -> None:
        """Ask the raft leader to hand over to `master` (nothing when it already leads)."""
        if self.consul_leader(via=master).startswith(f"{self.address(master)}:"):
            return
        peers = self.raft_peers(master)
        ids = [peer[1] for peer in peers if peer[:1] == [master]]
        if not ids:
            raise LabError(f"{master} is not among Consul's raft peers: {[peer[0] for peer in peers]}")
        self.sh_consul(master, ["operator", "raft", "transfer-leader", f"-id={ids[0]}"])

    def sh_consul(self, host: str, args: Sequence[str]) -> str:
        """`consul <args>` on a node with the management token (see consul()); raises when it fails."""
        proc = self.consul(host, args)
        if proc.returncode != 0:
            raise LabError(f"{host}: `consul {' '.join(args)}` failed ({proc.returncode}): "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def swarm_nodes(self, via: str | None = None) -> list[SwarmNode]:
        """`docker node ls` on a manager (default: the first master that runs)."""
        out = self.sh(via or self.live_master(), ["docker", "node", "ls", "--format", "{{json .}}"])
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return [
            SwarmNode(r["Hostname"], r["Status"], r["Availability"], r.get("ManagerStatus", ""),
                      r.get("EngineVersion", ""))
            for r in rows
        ]

    def service_tasks(self, service: str, via: str | None = None) -> list[str]:
        """Nodes that hold a running task of the service (one entry per task)."""
        out = self.sh(
            via or self.live_master(),
            ["docker", "service", "ps", service, "--filter", "desired-state=running",
             "--format", "{{.Node}} {{.CurrentState}}"],
        )
        return [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["Running"]]

    def http(
        self,
        host_header: str,
        path: str = "/",
        *,
        via: str | None = None,
        timeout: float = 5,
        headers: dict[str, str] | None = None,
        scheme: str = "https",
        verify_tls: bool = True,
        ca: Path | None = None,
        follow_redirects: bool = False,
    ) -> HttpAnswer:
        """One request to the entry point on `via` (a host of the lab, or an
        address such as a virtual IP; default the first master), routed by
        the Host header. Never raises: no answer is status 0.

        HTTPS by default, as the proxy serves: the TLS server name is the Host
        header, and the certificate must verify for it against `ca` (default:
        the edge CA the reverse_proxy role made, pki/edge/ca.pem). A redirect
        is the answer (its status and Location) unless `follow_redirects`,
        which follows it to the same `via` only, never to a name's DNS."""
        url = f"{scheme}://{self._target(via)}{path}"
        req = urllib.request.Request(url, headers={"Host": host_header, **(headers or {})})
        server_name = host_header.split(":", maxsplit=1)[0]
        try:
            if scheme != "https" and not follow_redirects:
                context = None  # no TLS asked (a redirect to HTTPS is then only the answer)
            elif verify_tls:
                context = ssl.create_default_context(cafile=str(ca or self.pki_dir("edge") / "ca.pem"))
            else:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers: list[urllib.request.BaseHandler] = [
                _ServerNameHandler(context, server_name),
                _SameTargetRedirect(self._target(via)) if follow_redirects else _NoRedirect(),
            ]
            with urllib.request.build_opener(*handlers).open(req, timeout=timeout) as resp:
                return HttpAnswer(resp.status, resp.read().decode(errors="replace"), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return HttpAnswer(err.code, err.read().decode(errors="replace"), dict(err.headers))
        except (OSError, ValueError) as err:
            return HttpAnswer(0, str(err))

    @staticmethod
    def wait_until(what: str, predicate: Callable[[], object], limit: float, interval: float = 1.0) -> float:
        """Poll until predicate() is true; seconds taken, or LabTimeout after `limit`."""
        return _wait_until(what, predicate, limit, interval)

    def drill(
        self,
        *,
        ttl: int,
        limits: DrillLimits,
        service: str = "demo-web",
        host_header: str = "demo.picluster.lab",
        replicas: int = 3,
        victim: str | None = None,
        via: str | None = None,
        while_down: Callable[[DrillRun], None] | None = None,
        after_rejoin: Callable[[DrillRun], None] | None = None,
    ) -> DrillReport:
        """The failure drill: kill a worker that holds a task while requests run
        through the entry point; see drill.kill_a_worker. Raises DrillFailed
        (with the report so far) when a wait runs out; the node is started again either way."""
        return kill_a_worker(self, ttl=ttl, limits=limits, service=service, host_header=host_header,
                             replicas=replicas, victim=victim, via=via, while_down=while_down,
                             after_rejoin=after_rejoin)

    def master_drill(
        self,
        *,
        ttl: int,
        limits: DrillLimits,
        service: str = "demo-web",
        host_header: str = "demo.picluster.lab",
        replicas: int = 3,
        while_down: Callable[[DrillRun], None] | None = None,
    ) -> DrillReport:
        """Kill the first master (leader of everything) while requests run through
        the virtual IP; see drill.kill_the_first_master."""
        return kill_the_first_master(self, ttl=ttl, limits=limits, service=service, host_header=host_header,
                                     replicas=replicas, while_down=while_down)

    def _target(self, via: str | None) -> str:
        """An address to talk to: a host's lab address, or `via` itself when it is not a host."""
        via = via or self.first_master
        return self.address(via) if via in self._hosts else via
