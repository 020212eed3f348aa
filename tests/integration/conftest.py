# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real Consul agents for the integration tests, started and stopped by the tests.

Fixtures (generic, for plugin and role tests alike):
  consul_bin        path of the Consul binary (PICLUSTER_CONSUL_BIN); fails if missing
  consul_agent      a dev-mode agent on loopback ports (session scope)
  consul_acl_agent  ACLs on, default deny, management token in .token (session scope)
  consul_tls_agent  HTTPS only, client certificates required; .tls has the paths (session scope)
  consul_factory    start extra agents (function scope), e.g. to restart one or to watch a leader appear
  tls_material      throwaway CA, server and client certificates, plus an unrelated CA

Every agent binds 127.0.0.1 only, on free ports, and is killed at teardown.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

DEFAULT_CONSUL_BIN = "/var/cache/picluster/consul/consul-1.22.3"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def consul_binary() -> str:
    path = os.environ.get("PICLUSTER_CONSUL_BIN", DEFAULT_CONSUL_BIN)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"the Consul binary {path} is missing; build it with `scripts/setup.sh consul` "
            "(or point PICLUSTER_CONSUL_BIN at one)",
            pytrace=False,
        )
    return path


class ConsulAgent:
    """One real Consul agent in dev mode (or a single server), on loopback ports."""

    # Deliberately alike in shape to ConsulClient.__init__ in module_utils/_consul.py
    # (`duplicates` pairs the attribute assignments): nothing to share between the
    # client under test and the agent the tests start for it.
    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        name: str = "consul",
        acl_token: Optional[str] = None,
        tls: Optional[Dict[str, str]] = None,
        dev: bool = True,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.name = name
        self.token = acl_token
        self.tls = tls
        self.dev = dev
        self.ports = {k: free_port() for k in ("http", "serf_lan", "serf_wan", "server")}
        self.process: Optional[subprocess.Popen] = None
        self.log_path = workdir / f"{name}.log"
        self.config_path = workdir / f"{name}.json"
        workdir.mkdir(parents=True, exist_ok=True)

    # -- addresses ---------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def http_addr(self) -> str:
        return f"127.0.0.1:{self.ports['http']}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.http_addr}"

    def module_args(self) -> Dict[str, Any]:
        """Connection options for the picluster.swarm modules and plugins."""
        args: Dict[str, Any] = {"host": self.url}
        if self.token:
            args["token"] = self.token
        if self.tls:
            args.update(ca_path=self.tls["ca"], client_cert=self.tls["client_cert"], client_key=self.tls["client_key"])
        return args

    def env(self) -> Dict[str, str]:
        """The same settings as Consul's usual environment variables."""
        env = {"CONSUL_HTTP_ADDR": self.url}
        if self.token:
            env["CONSUL_HTTP_TOKEN"] = self.token
        if self.tls:
            env.update(CONSUL_CACERT=self.tls["ca"], CONSUL_CLIENT_CERT=self.tls["client_cert"],
                       CONSUL_CLIENT_KEY=self.tls["client_key"])
        return env

    # -- life cycle ----------------------------------------------------------

    def _config(self) -> Dict[str, Any]:
        ports = {"dns": -1, "grpc": -1, "grpc_tls": -1, "serf_lan": self.ports["serf_lan"],
                 "serf_wan": self.ports["serf_wan"], "server": self.ports["server"]}
        if self.tls:
            ports.update(http=-1, https=self.ports["http"])
        else:
            ports["http"] = self.ports["http"]
        config: Dict[str, Any] = {
            "node_name": self.name,
            "bind_addr": "127.0.0.1",
            "client_addr": "127.0.0.1",
            "advertise_addr": "127.0.0.1",
            "ports": ports,
            "log_level": "INFO",
            "disable_update_check": True,
        }
        if not self.dev:
            config.update(server=True, bootstrap_expect=1, data_dir=str(self.workdir / f"{self.name}-data"))
        if self.token:
            config["acl"] = {"enabled": True, "default_policy": "deny", "enable_token_persistence": False,
                             "tokens": {"initial_management": self.token}}
        if self.tls:
            config["tls"] = {"defaults": {"ca_file": self.tls["ca"], "cert_file": self.tls["server_cert"],
                                          "key_file": self.tls["server_key"], "verify_incoming": True}}
        return config

    def start(self, wait: bool = True) -> ConsulAgent:
        self.config_path.write_text(json.dumps(self._config()))
        args = [self.binary, "agent", "-config-file", str(self.config_path)]
        if self.dev:
            args.insert(2, "-dev")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        if wait:
            self.wait_for_leader()
        return self

    def wait_for_leader(self, timeout: float = START_TIMEOUT) -> float:
        """Wait until the agent has a raft leader (and ACLs are ready); return seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process and self.process.poll() is not None:
                pytest.fail(f"consul agent {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.api("GET", "/v1/status/leader") and (not self.token or self.api("GET", "/v1/acl/token/self")):
                    return time.monotonic() - started
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.2)
        pytest.fail(f"consul agent {self.name} had no leader after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- direct HTTP for test set-up (deliberately not the code under test) -----

    def api(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
            params: Optional[Dict[str, str]] = None) -> Any:
        url = self.url + path
        if params:
            url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        data = None if body is None else (body if isinstance(body, (str, bytes)) else json.dumps(body))
        if isinstance(data, str):
            data = data.encode()
        request = urllib.request.Request(url, data=data, method=method)
        if token or self.token:
            request.add_header("X-Consul-Token", token or self.token)
        context = None
        if self.tls:
            import ssl

            context = ssl.create_default_context(cafile=self.tls["ca"])
            context.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return json.loads(text) if text else None

    def kv_put(self, key: str, value: str, acquire: Optional[str] = None) -> bool:
        return self.api("PUT", "/v1/kv/" + key, value, params={"acquire": acquire} if acquire else None)

    def kv_get(self, key: str) -> Optional[Dict[str, Any]]:
        data = self.api("GET", "/v1/kv/" + key)
        return data[0] if data else None

    def kv_delete_tree(self, prefix: str) -> None:
        self.api("DELETE", "/v1/kv/" + prefix.strip("/") + "/", params={"recurse": "true"})

    def session_create(self, name: str = "test", ttl: str = "10s", behavior: str = "delete") -> str:
        body = {"Name": name, "TTL": ttl, "Behavior": behavior, "LockDelay": "0s"}
        return self.api("PUT", "/v1/session/create", body)["ID"]

    def session_destroy(self, session_id: str) -> None:
        self.api("PUT", "/v1/session/destroy/" + session_id)

    def session_info(self, session_id: str) -> Optional[Dict[str, Any]]:
        data = self.api("GET", "/v1/session/info/" + session_id)
        return data[0] if data else None


# -- TLS material --------------------------------------------------------------


def _write_key_and_cert(directory: Path, stem: str, key: Any, cert: Any) -> Dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return {"key": str(key_path), "cert": str(cert_path)}


def make_tls_material(directory: Path) -> Dict[str, str]:
    """A throwaway CA with a server certificate (127.0.0.1, localhost) and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def make_ca(common: str) -> Any:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(name(common))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    def make_leaf(ca_key: Any, ca_cert: Any, common: str, usage: List[Any], sans: List[Any], *,
                  expired: bool = False) -> Any:
        key = ec.generate_private_key(ec.SECP256R1())
        days = datetime.timedelta(days=1)
        builder = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - (3 * days if expired else datetime.timedelta(minutes=5)))
                   .not_valid_after(now - days if expired else now + days)
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    ca_key, ca_cert = make_ca("picluster test CA")
    other_key, other_cert = make_ca("unrelated CA")
    server_key, server_cert = make_leaf(
        ca_key, ca_cert, "server.dc1.consul", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        [x509.DNSName("localhost"), x509.DNSName("server.dc1.consul"),
         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_key, client_cert = make_leaf(ca_key, ca_cert, "ansible client", [ExtendedKeyUsageOID.CLIENT_AUTH], [])
    # The same names, expired yesterday: what a cluster left alone past its certificates' lifetime serves.
    old_server_key, old_server_cert = make_leaf(
        ca_key, ca_cert, "server.dc1.consul", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], expired=True)
    old_client_key, old_client_cert = make_leaf(ca_key, ca_cert, "ansible client",
                                                [ExtendedKeyUsageOID.CLIENT_AUTH], [], expired=True)
    ca = _write_key_and_cert(directory, "ca", ca_key, ca_cert)
    other = _write_key_and_cert(directory, "other-ca", other_key, other_cert)
    server = _write_key_and_cert(directory, "server", server_key, server_cert)
    client = _write_key_and_cert(directory, "client", client_key, client_cert)
    old_server = _write_key_and_cert(directory, "expired-server", old_server_key, old_server_cert)
    old_client = _write_key_and_cert(directory, "expired-client", old_client_key, old_client_cert)
    return {"ca": ca["cert"], "other_ca": other["cert"], "server_cert": server["cert"], "server_key": server["key"],
            "client_cert": client["cert"], "client_key": client["key"],
            "expired_server_cert": old_server["cert"], "expired_server_key": old_server["key"],
            "expired_client_cert": old_client["cert"], "expired_client_key": old_client["key"]}


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def consul_bin() -> str:
    return consul_binary()


@pytest.fixture(scope="session")
def consul_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("consul")


@pytest.fixture(scope="session")
def tls_material(consul_workdir: Path) -> Dict[str, str]:
    return make_tls_material(consul_workdir / "tls")


@pytest.fixture(scope="session")
def consul_agent(consul_bin: str, consul_workdir: Path) -> Iterator[ConsulAgent]:
    agent = ConsulAgent(consul_bin, consul_workdir, name="plain").start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def consul_acl_agent(consul_bin: str, consul_workdir: Path) -> Iterator[ConsulAgent]:
    agent = ConsulAgent(consul_bin, consul_workdir, name="acl", acl_token=str(uuid.uuid4())).start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def consul_tls_agent(consul_bin: str, consul_workdir: Path, tls_material: Dict[str, str]) -> Iterator[ConsulAgent]:
    agent = ConsulAgent(consul_bin, consul_workdir, name="tls", tls=tls_material).start()
    yield agent
    agent.stop()


@pytest.fixture
def consul_factory(consul_bin: str, tmp_path: Path) -> Iterator[Callable[..., ConsulAgent]]:
    agents: List[ConsulAgent] = []

    def start(name: str = "extra", wait: bool = True, **kwargs: Any) -> ConsulAgent:
        agent = ConsulAgent(consul_bin, tmp_path / name, name=name, **kwargs).start(wait=wait)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.kill()
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def kv_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix of its own for each test, so tests sharing an agent do not see each other's members."""
    return f"test/{request.node.name[:40].replace('[', '_').replace(']', '')}-{uuid.uuid4().hex[:6]}/nodes"
