# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one Consul client of the collection, its options and its error messages.

python-consul2 and py-consul are both ``import consul`` but differ where it
matters here: both let CONSUL_HTTP_ADDR/CONSUL_HTTP_TOKEN override arguments
given explicitly, a lost session is ``None`` in one and an exception in the
other, py-consul sends no token to /v1/agent/members, and their timeout
arguments differ. So the library provides the HTTP session
(``consul.std.HTTPClient(...).session``, a requests session in both) and this
wrapper makes the few calls itself: the same behaviour with either library,
one place that turns failures into messages a person can act on, and an exact
count of requests (``request_count``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlencode, urlsplit
from urllib.parse import quote as url_quote

CONSUL_IMPORT_ERROR: Optional[str] = None
try:
    import consul
    import consul.std
    import requests
except ImportError:
    CONSUL_IMPORT_ERROR = traceback.format_exc()

REQUIRED_LIB = "python-consul2"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8500
DEFAULT_TIMEOUT = 10.0

# Shared by every module and plugin (_consul_module.ConsulModule, client_from_options); the doc
# fragment picluster.swarm.consul documents it, once.
CONSUL_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = dict(
    host=dict(type="str"),
    port=dict(type="int"),
    scheme=dict(type="str", choices=["http", "https"]),
    token=dict(type="str", no_log=True),
    ca_path=dict(type="path"),
    client_cert=dict(type="path"),
    client_key=dict(type="path"),
    validate_certs=dict(type="bool"),
    timeout=dict(type="float", default=DEFAULT_TIMEOUT),
)
CONSUL_OPTION_NAMES = tuple(CONSUL_ARGUMENT_SPEC)

_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


class ConsulError(Exception):
    """A failure already phrased for a person: what failed, why, what to do."""


@dataclasses.dataclass(repr=False)
class ConnectionSettings:
    """Where and how to reach Consul, after options and environment are merged."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    scheme: str = "http"
    token: Optional[str] = None
    ca_path: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    validate_certs: bool = True
    timeout: float = DEFAULT_TIMEOUT

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def verify(self) -> Any:
        """The value requests wants: False, True or a CA bundle path."""
        if not self.validate_certs:
            return False
        return self.ca_path or True

    @property
    def cert(self) -> Any:
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return self.client_cert or None

    def __repr__(self) -> str:  # never shows the token
        return "ConnectionSettings({}, token={})".format(self.url, "set" if self.token else "unset")


def parse_address(text: str) -> Tuple[Optional[str], str, Optional[int]]:
    """Split 'host', 'host:port' or 'scheme://host:port' into (scheme, host, port).

    Raises ValueError with a message when it is none of these.
    """
    value = (text or "").strip()
    if not value:
        raise ValueError("the Consul address is empty")
    has_scheme = "://" in value
    parts = urlsplit(value if has_scheme else "//" + value)
    scheme = parts.scheme.lower() if has_scheme else None
    if scheme is not None and scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme '{parts.scheme}' in Consul address {value!r} (use http or https)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid port in Consul address {value!r}") from None
    if not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"Consul address {value!r} is not host, host:port or http(s)://host:port")
    return scheme, parts.hostname, port


def _env_bool(environ: Mapping[str, str], name: str) -> Optional[bool]:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    word = raw.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use true or false)")


def _token_from_env(environ: Mapping[str, str]) -> Optional[str]:
    if environ.get("CONSUL_HTTP_TOKEN"):
        return environ["CONSUL_HTTP_TOKEN"]
    path = environ.get("CONSUL_HTTP_TOKEN_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip() or None
        except OSError as exc:
            raise ValueError(f"cannot read CONSUL_HTTP_TOKEN_FILE {path}: {exc.strerror}") from None
    return None


def resolve_settings(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> ConnectionSettings:
    """Merge options with Consul's usual environment variables (options win).

    Raises ConsulError when a value cannot be used.
    """
    env = os.environ if environ is None else environ
    try:
        return _resolve(params, env)
    except ValueError as exc:
        raise ConsulError(f"invalid Consul connection settings: {exc}") from None


def _resolve(params: Mapping[str, Any], env: Mapping[str, str]) -> ConnectionSettings:
    addr_scheme, host, addr_port = None, DEFAULT_HOST, None
    if params.get("host"):
        addr_scheme, host, addr_port = parse_address(params["host"])
    elif env.get("CONSUL_HTTP_ADDR"):
        try:
            addr_scheme, host, addr_port = parse_address(env["CONSUL_HTTP_ADDR"])
        except ValueError as exc:
            raise ValueError(f"CONSUL_HTTP_ADDR: {exc}") from None
    env_ssl = _env_bool(env, "CONSUL_HTTP_SSL")
    scheme = params.get("scheme") or addr_scheme or ("https" if env_ssl else "http")
    port = params.get("port") or addr_port or DEFAULT_PORT
    if not 0 < int(port) < 65536:
        raise ValueError(f"port {port} is outside 1-65535")
    validate = params.get("validate_certs")
    if validate is None:
        env_verify = _env_bool(env, "CONSUL_HTTP_SSL_VERIFY")
        validate = True if env_verify is None else env_verify
    settings = ConnectionSettings(
        host=host,
        port=int(port),
        scheme=scheme,
        token=params.get("token") or _token_from_env(env),
        ca_path=params.get("ca_path") or env.get("CONSUL_CACERT") or None,
        client_cert=params.get("client_cert") or env.get("CONSUL_CLIENT_CERT") or None,
        client_key=params.get("client_key") or env.get("CONSUL_CLIENT_KEY") or None,
        validate_certs=bool(validate),
        timeout=float(params.get("timeout") or DEFAULT_TIMEOUT),
    )
    for name in ("ca_path", "client_cert", "client_key"):
        path = getattr(settings, name)
        if path and not os.path.isfile(path):
            raise ValueError(f"{name} {path} does not exist or is not a file")
    if settings.client_key and not settings.client_cert:
        raise ValueError("client_key is set but client_cert is not; give both")
    if settings.timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    return settings


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "failed to resolve" in lowered or "nodename nor servname" in lowered:
        return "the host name does not resolve"
    if "no route to host" in lowered:
        return "no route to host"
    if "network is unreachable" in lowered:
        return "network is unreachable"
    if "reset by peer" in lowered or "remotedisconnected" in lowered or "connection aborted" in lowered:
        return "the connection was closed by the other side (an HTTPS port spoken to with http?)"
    return text


_CHECK_TLS_OPTIONS = "check scheme, ca_path (CONSUL_CACERT), client_cert/client_key, or validate_certs"


def _tls_failure(exc: Exception) -> Tuple[str, str]:
    """Why a TLS handshake with Consul failed, and what the operator can do about it."""
    text = str(exc)
    lowered = text.lower()
    if "certificate verify failed" in lowered:
        detail = text.split("certificate verify failed:", 1)[-1].split("(", maxsplit=1)[0].strip(" )'\"")
        if detail == "certificate has expired":
            return (
                "certificate verify failed (certificate has expired)",
                "Consul's server certificate has expired (or this machine's clock is wrong): run the "
                "picluster.swarm.consul role again, which re-signs server certificates that expire within "
                "consul_tls_cert_renew_days, and check the clocks of both machines",
            )
        return (f"certificate verify failed ({detail})" if detail else "certificate verify failed"), _CHECK_TLS_OPTIONS
    if "wrong version number" in lowered or "record layer failure" in lowered or "packet length too long" in lowered:
        return "the server does not speak TLS on this port (use scheme http?)", _CHECK_TLS_OPTIONS
    if "hostname" in lowered and "match" in lowered:
        return "the certificate does not match the host name", _CHECK_TLS_OPTIONS
    if "alert certificate expired" in lowered:
        return (
            "Consul rejected the client certificate: it has expired",
            "renew client_cert (CONSUL_CLIENT_CERT) with the CA Consul trusts, or check the clocks",
        )
    if "certificate required" in lowered:
        return (
            "Consul requires a client certificate (set client_cert and client_key, or CONSUL_CLIENT_CERT/KEY)",
            _CHECK_TLS_OPTIONS,
        )
    if "unknown ca" in lowered or "bad certificate" in lowered:
        return "Consul rejected the client certificate (not signed by a CA it trusts?)", _CHECK_TLS_OPTIONS
    inner = re.search(r"\[SSL: [A-Z0-9_]+\] ([^(]+)", text)
    return (inner.group(1).strip() if inner else text), _CHECK_TLS_OPTIONS


class ConsulClient:
    """Minimal Consul HTTP client: KV, sessions, status and agent members."""

    def __init__(self, settings: ConnectionSettings) -> None:
        if CONSUL_IMPORT_ERROR is not None:
            raise ConsulError(f"the Python library {REQUIRED_LIB} is not installed: {CONSUL_IMPORT_ERROR}")
        self.settings = settings
        self.request_count = 0
        # Set from Consul's X-Consul-Default-Acl-Policy header: with "deny" and no
        # token, an empty answer may only mean the anonymous token sees nothing.
        self.acl_default_deny = False
        library_client = consul.std.HTTPClient(
            settings.host, settings.port, settings.scheme, settings.verify, settings.cert
        )
        self._http = library_client.session

    # -- transport ---------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        body: Optional[str] = None,
        action: str = "",
        allow_404: bool = False,
    ) -> Tuple[int, Any, Mapping[str, str]]:
        """Send one request; return (status, decoded JSON or text, headers).

        Raises ConsulError phrased with `action` ("reading docker/swarm/nodes").
        """
        url = self.settings.url + url_quote(path, safe="/:@")
        if params:
            url += "?" + urlencode([(k, v) for k, v in params.items() if v is not None])
        headers = {"X-Consul-Token": self.settings.token} if self.settings.token else {}
        self.request_count += 1
        try:
            response = self._http.request(
                method,
                url,
                data=body,
                headers=headers,
                verify=self.settings.verify,
                cert=self.settings.cert,
                timeout=self.settings.timeout,
            )
        except requests.exceptions.SSLError as exc:
            reason, fix = _tls_failure(exc)
            raise ConsulError(
                f"TLS with Consul at {self.settings.url} failed while {action}: {reason}; {fix}"
            ) from None
        except requests.exceptions.Timeout:
            raise ConsulError(
                f"Consul at {self.settings.url} did not answer within {self.settings.timeout:.0f} s while {action}; "
                "is the agent overloaded or the address wrong? "
                "raise timeout or set host (CONSUL_HTTP_ADDR)"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise ConsulError(
                f"cannot reach Consul at {self.settings.url} while {action}: {_connection_reason(exc)}; "
                "is the agent running? "
                "set host/port (CONSUL_HTTP_ADDR)"
            ) from None
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise ConsulError(f"request to Consul at {self.settings.url} failed while {action}: {exc}") from None
        return self._check(response, action, allow_404)

    def _check(self, response: Any, action: str, allow_404: bool) -> Tuple[int, Any, Mapping[str, str]]:
        status = response.status_code
        self.acl_default_deny = str(response.headers.get("X-Consul-Default-Acl-Policy", "")).lower() == "deny"
        text = response.text or ""
        if status == 404 and allow_404:
            return status, None, response.headers
        if status >= 400:
            raise ConsulError(self._describe_status(status, text.strip(), action))
        if not text:
            return status, None, response.headers
        try:
            return status, json.loads(text), response.headers
        except ValueError:
            return status, text, response.headers

    def _describe_status(self, status: int, text: str, action: str) -> str:
        where = f"Consul at {self.settings.url}"
        lowered = text.lower()
        if status == 403 and "acl not found" in lowered:
            return (
                f"{where} refused {action}: the ACL token is not known to Consul ({text}); "
                "set token (CONSUL_HTTP_TOKEN) to a valid token"
            )
        if status in (401, 403):
            return (
                f"{where} refused {action}: permission denied ({text}); "
                "set token (CONSUL_HTTP_TOKEN) to a token whose policy "
                "allows it (key_prefix write on the membership prefix, session_prefix write, node_prefix read)"
            )
        if status == 400 and "https" in lowered:
            return f"{where} refused {action}: {text}; set scheme https"
        if status == 500 and "no cluster leader" in lowered:
            return (
                f"{where} could not serve {action}: no cluster leader yet; wait for one "
                "(picluster.swarm.consul_cluster_info wait_for_leader=true) and retry"
            )
        return f"{where} answered HTTP {status} while {action}: {text or '(empty body)'}"

    @staticmethod
    def _filtered(headers: Mapping[str, str]) -> bool:
        return str(headers.get("X-Consul-Results-Filtered-By-ACLs", "")).lower() == "true"

    def _refuse_filtered(self, headers: Mapping[str, str], what: str, permission: str) -> None:
        if self._filtered(headers):
            raise ConsulError(
                f"Consul at {self.settings.url} hid part of {what} from this ACL token, so the answer would be wrong; "
                f"set token (CONSUL_HTTP_TOKEN) to one with {permission}"
            )

    # -- KV ----------------------------------------------------------------

    def kv_list(self, prefix: str) -> List[Dict[str, Any]]:
        """All entries under prefix, in one request (raw: Value is base64)."""
        path = "/v1/kv/{}/".format(prefix.strip("/"))
        status, data, headers = self.request(
            "GET", path, {"recurse": "true"}, action="reading {}/".format(prefix.strip("/")), allow_404=True
        )
        self._refuse_filtered(headers, "the keys under {}/".format(prefix.strip("/")), "key_prefix read on it")
        return list(data or []) if status != 404 else []

    def kv_get(self, key: str) -> Optional[Dict[str, Any]]:
        status, data, _headers = self.request("GET", "/v1/kv/" + key, action=f"reading {key}", allow_404=True)
        if status == 404 or not data:
            return None
        return data[0]

    def kv_put(self, key: str, value: str, acquire: Optional[str] = None) -> bool:
        """Write key; with acquire, only if the session gets (or holds) the lock."""
        params = {"acquire": acquire} if acquire else None
        _status, data, _headers = self.request("PUT", "/v1/kv/" + key, params, body=value, action=f"writing {key}")
        return data is True or str(data).strip() == "true"

    def kv_delete(self, key: str, cas: Optional[int] = None) -> bool:
        params = {"cas": cas} if cas is not None else None
        _status, data, _headers = self.request("DELETE", "/v1/kv/" + key, params, action=f"deleting {key}")
        return data is True or str(data).strip() == "true"

    # -- sessions ------------------------------------------------------------

    def session_create(self, name: str, ttl: int, behavior: str = "delete", lock_delay: str = "0s") -> str:
        payload = {"Name": name, "TTL": f"{ttl}s", "Behavior": behavior, "LockDelay": lock_delay}
        _status, data, _headers = self.request(
            "PUT", "/v1/session/create", body=json.dumps(payload), action=f"creating session {name!r}"
        )
        if not isinstance(data, dict) or not data.get("ID"):
            raise ConsulError(f"Consul at {self.settings.url} answered session create with {data!r}")
        return data["ID"]

    def session_info(self, session_id: str) -> Optional[Dict[str, Any]]:
        status, data, _headers = self.request(
            "GET", "/v1/session/info/" + session_id, action=f"reading session {session_id}", allow_404=True
        )
        return data[0] if status != 404 and data else None

    def session_renew(self, session_id: str) -> Optional[Dict[str, Any]]:
        """Renew a session; None when Consul no longer knows it."""
        status, data, _headers = self.request(
            "PUT", "/v1/session/renew/" + session_id, action=f"renewing session {session_id}", allow_404=True
        )
        return data[0] if status != 404 and data else None

    def session_destroy(self, session_id: str) -> bool:
        _status, data, _headers = self.request(
            "PUT", "/v1/session/destroy/" + session_id, action=f"destroying session {session_id}"
        )
        return data is True or str(data).strip() == "true"

    def session_list(self) -> List[Dict[str, Any]]:
        _status, data, headers = self.request("GET", "/v1/session/list", action="listing sessions")
        self._refuse_filtered(headers, "the session list", "session_prefix read")
        return list(data or [])

    # -- cluster status ------------------------------------------------------

    def leader(self) -> str:
        _status, data, _headers = self.request("GET", "/v1/status/leader", action="asking for the raft leader")
        return data if isinstance(data, str) else ""

    def peers(self) -> List[str]:
        _status, data, _headers = self.request("GET", "/v1/status/peers", action="listing raft peers")
        return list(data or [])

    def agent_members(self) -> List[Dict[str, Any]]:
        _status, data, headers = self.request("GET", "/v1/agent/members", action="listing serf members")
        self._refuse_filtered(headers, "the serf members", "node_prefix read")
        return list(data or [])


def acl_hint(client: ConsulClient, what: str) -> Optional[str]:
    """A warning for an empty answer under default-deny ACLs without a token, else None."""
    if client.acl_default_deny and not client.settings.token:
        return (
            f"Consul at {client.settings.url} denies by default (ACLs on) and no token was given, so {what} may only "
            "mean that the anonymous token may not read it; set token (CONSUL_HTTP_TOKEN)"
        )
    return None


def client_from_params(params: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> ConsulClient:
    """Build a client from module/plugin options plus the environment."""
    return ConsulClient(resolve_settings(params, environ))


def client_from_options(get_option: Callable[[str], Any], environ: Optional[Mapping[str, str]] = None) -> ConsulClient:
    """Build a client from an inventory or lookup plugin's options (on the controller).

    Raises ConsulError, the missing library included.
    """
    if CONSUL_IMPORT_ERROR is not None:
        raise ConsulError(f"the Python library {REQUIRED_LIB} is missing on the controller: pip install {REQUIRED_LIB}")
    return client_from_params({name: get_option(name) for name in CONSUL_OPTION_NAMES}, environ)
