"""How this host reaches a lab's Consul, as the consul role left it.

With the role's defaults (TLS and ACLs on) the servers' API is HTTPS on port
8501, checked against the Consul CA the role keeps beside the playbooks'
inventory (`pki/consul/ca.pem`), and reading membership takes the read-only
token kept there too (`pki/consul/tokens/read`); the plain HTTP API listens on
each node's 127.0.0.1 only. Without that CA (TLS off), plain HTTP on 8500.
Tokens never go on a command line: the module gets the file's path through
CONSUL_HTTP_TOKEN_FILE, a node's CLI gets the token on its standard input.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HTTP_PORT = 8500
HTTPS_PORT = 8501


@dataclass(frozen=True)
class Answer:
    status: int  # 0 when nothing answered (refused, TLS failure, timeout)
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class ConsulAccess:
    """The controller-side PKI of one lab's Consul (`Lab.consul_access`)."""

    pki: Path

    @property
    def ca(self) -> Path | None:
        path = self.pki / "ca.pem"
        return path if path.is_file() else None

    @property
    def tls(self) -> bool:
        return self.ca is not None

    def token_file(self, name: str = "read") -> Path | None:
        """pki/consul/tokens/<name> (read, management, heartbeat-<host>, agent-<host>) when it exists."""
        path = self.pki / "tokens" / name
        return path if path.is_file() else None

    def token(self, name: str = "read") -> str | None:
        path = self.token_file(name)
        return path.read_text().strip() if path else None

    def url(self, address: str, *, tls: bool | None = None) -> str:
        secure = self.tls if tls is None else tls
        return f"https://{address}:{HTTPS_PORT}" if secure else f"http://{address}:{HTTP_PORT}"

    def module_options(self, address: str) -> dict[str, Any]:
        """Connection options for the collection's modules (the token comes from module_env)."""
        options: dict[str, Any] = {"host": self.url(address)}
        if self.ca:
            options["ca_path"] = str(self.ca)
        return options

    def module_env(self) -> dict[str, str]:
        path = self.token_file("read")
        return {"CONSUL_HTTP_TOKEN_FILE": str(path)} if path else {}

    def request(
        self,
        address: str,
        path: str,
        *,
        method: str = "GET",
        body: str | None = None,
        token: str | None = None,
        tls: bool | None = None,
        ca: Path | bool | None = True,
        timeout: float = 5,
    ) -> Answer:
        """One request to a node's API; never raises. `ca=True` checks against the lab's Consul CA,
        `ca=None` against the system's CAs only (what a client without the CA sees), a Path against that file."""
        url = self.url(address, tls=tls) + path
        request = urllib.request.Request(url, data=None if body is None else body.encode(), method=method)
        if token:
            request.add_header("X-Consul-Token", token)
        context = None
        if url.startswith("https:"):
            cafile = self.ca if ca is True else (ca or None)
            context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                return Answer(resp.status, resp.read().decode(errors="replace"), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Answer(err.code, err.read().decode(errors="replace"), dict(err.headers))
        except (OSError, ValueError) as err:
            return Answer(0, str(getattr(err, "reason", err)), {})
