# Copyright (c) 2025 picluster.swarm developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection settings: options, environment fallbacks and their precedence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.picluster.swarm.plugins.doc_fragments.consul import ModuleDocFragment
from ansible_collections.picluster.swarm.plugins.module_utils import _consul as c

NO_OPTIONS = {name: None for name in c.CONSUL_OPTION_NAMES}


def resolve(env=None, **options):
    params = dict(NO_OPTIONS, timeout=10.0)
    params.update(options)
    return c.resolve_settings(params, env or {})


def test_defaults():
    settings = resolve()
    assert settings.url == "http://127.0.0.1:8500"
    assert settings.token is None
    assert settings.verify is True
    assert settings.cert is None


@pytest.mark.parametrize(
    ("addr", "url"),
    [
        ("10.0.0.10:8500", "http://10.0.0.10:8500"),
        ("10.0.0.10", "http://10.0.0.10:8500"),
        ("http://consul.lan:8600", "http://consul.lan:8600"),
        ("https://10.0.0.10:8501", "https://10.0.0.10:8501"),
        ("HTTPS://10.0.0.10:8501/", "https://10.0.0.10:8501"),
        ("[::1]:8500", "http://[::1]:8500"),
    ],
)
def test_consul_http_addr_forms(addr, url):
    assert resolve({"CONSUL_HTTP_ADDR": addr}).url == url
    assert resolve(host=addr).url == url


def test_options_win_over_environment():
    env = {"CONSUL_HTTP_ADDR": "https://10.9.9.9:9999", "CONSUL_HTTP_TOKEN": "env-token",
           "CONSUL_HTTP_SSL_VERIFY": "false"}
    settings = resolve(env, host="127.0.0.1", port=8501, scheme="http", token="option-token", validate_certs=True)
    assert settings.url == "http://127.0.0.1:8501"
    assert settings.token == "option-token"
    assert settings.validate_certs is True


def test_environment_fallbacks(tmp_path):
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("x")
    settings = resolve({"CONSUL_HTTP_ADDR": "https://h:8501", "CONSUL_HTTP_TOKEN": "t", "CONSUL_CACERT": str(ca),
                        "CONSUL_CLIENT_CERT": str(cert), "CONSUL_CLIENT_KEY": str(key)})
    assert settings.token == "t"
    assert settings.verify == str(ca)
    assert settings.cert == (str(cert), str(key))
    assert resolve({"CONSUL_HTTP_SSL_VERIFY": "false"}, ca_path=str(ca)).verify is False
    assert resolve({"CONSUL_HTTP_SSL": "true"}).url == "https://127.0.0.1:8500"


def test_token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert resolve({"CONSUL_HTTP_TOKEN_FILE": str(path)}).token == "from-file"
    with pytest.raises(c.ConsulError, match="cannot read CONSUL_HTTP_TOKEN_FILE"):
        resolve({"CONSUL_HTTP_TOKEN_FILE": str(tmp_path / "nope")})


def test_repr_hides_token():
    assert "secret" not in repr(resolve(token="secret"))


@pytest.mark.parametrize(
    ("env", "options", "message"),
    [
        ({"CONSUL_HTTP_ADDR": "ftp://h:21"}, {}, "CONSUL_HTTP_ADDR: unsupported scheme 'ftp'"),
        ({"CONSUL_HTTP_ADDR": "h:port"}, {}, "CONSUL_HTTP_ADDR: invalid port"),
        ({}, {"host": "http://h:8500/v1/kv"}, "is not host, host:port or http(s)://host:port"),
        ({"CONSUL_HTTP_SSL_VERIFY": "maybe"}, {}, "CONSUL_HTTP_SSL_VERIFY='maybe' is not a boolean"),
        ({}, {"ca_path": "/nonexistent/ca.pem"}, "ca_path /nonexistent/ca.pem does not exist"),
        ({}, {"port": 70000}, "port 70000 is outside 1-65535"),
        ({}, {"timeout": -1.0}, "timeout must be a positive number"),
    ],
)
def test_invalid_settings_say_what_is_wrong(env, options, message):
    with pytest.raises(c.ConsulError) as info:
        resolve(env, **options)
    assert str(info.value).startswith("invalid Consul connection settings: ")
    assert message in str(info.value)


def test_client_key_without_cert(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("x")
    with pytest.raises(c.ConsulError, match="client_key is set but client_cert is not"):
        resolve(client_key=str(key))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded (Caused by NewConnectionError("
         "'[Errno 111] Connection refused'))", "connection refused"),
        ("Failed to resolve 'nohost.invalid'", "the host name does not resolve"),
        ("something odd", "something odd"),
    ],
)
def test_connection_reasons(error, reason):
    assert c._connection_reason(Exception(error)) == reason


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain "
         "(_ssl.c:1006)", "certificate verify failed (self-signed certificate in certificate chain)"),
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", "does not speak TLS on this port"),
        ("HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded (Caused by SSLError(SSLError(1, "
         "'[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)')))",
         "Consul requires a client certificate (set client_cert and client_key"),
        ("Caused by SSLError(SSLError(1, '[SSL: SOMETHING_NEW] something new (_ssl.c:1)'))", "something new"),
    ],
)
def test_tls_reasons(error, reason):
    assert reason in c._tls_failure(Exception(error))[0]


def test_argument_spec_marks_token_no_log():
    assert c.CONSUL_ARGUMENT_SPEC["token"]["no_log"] is True


def test_doc_fragment_documents_the_argument_spec_once():
    """The fragment's options are the argument spec's, with the same types and defaults."""
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(documented) == set(c.CONSUL_ARGUMENT_SPEC)
    for name, spec in c.CONSUL_ARGUMENT_SPEC.items():
        assert documented[name]["type"] == spec["type"], name
        assert documented[name].get("default") == spec.get("default"), name
        assert documented[name].get("choices") == spec.get("choices"), name
    # The add-on fragments add requirements and notes, never a second copy of the options.
    for addon in (ModuleDocFragment.MODULE, ModuleDocFragment.PLUGIN):
        assert not yaml.safe_load(addon)["options"]


def test_doc_fragment_names_every_environment_variable_read():
    """Each CONSUL_* variable the client reads is documented (they drifted when written twice)."""
    source = Path(c.__file__).read_text()
    read = set(re.findall(r'"(CONSUL_[A-Z_]+)"', source))
    assert read, "no environment variable found in _consul.py"
    for name in sorted(read):
        assert f"E({name}" in ModuleDocFragment.DOCUMENTATION, name
