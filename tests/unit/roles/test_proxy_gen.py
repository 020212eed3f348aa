"""The reverse proxy's configuration generator: swarm data in, nginx text out."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GEN = Path(__file__).resolve().parents[3] / "roles/reverse_proxy/files/picluster-proxy-gen.py"
_spec = importlib.util.spec_from_file_location("picluster_proxy_gen", GEN)
assert _spec and _spec.loader
gen = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gen  # dataclasses look their module up there
_spec.loader.exec_module(gen)


def service(sid: str, name: str, labels: dict | None = None) -> dict:
    return {"ID": sid, "Spec": {"Name": name, "Labels": labels or {}}}


def task(sid: str, address: str, state: str = "running", desired: str = "running", *, net: str = "my-net",
         node: str = "n1") -> dict:
    return {
        "ServiceID": sid,
        "NodeID": node,
        "DesiredState": desired,
        "Status": {"State": state},
        "NetworksAttachments": [
            {"Network": {"ID": "ingressid", "Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.9/24"]},
            {"Network": {"ID": f"{net}-id", "Spec": {"Name": net}}, "Addresses": [f"{address}/24"]},
        ],
    }


WEB = service("s1", "web", {"picluster.proxy.host": "web.example", "picluster.proxy.port": "8080"})


def test_task_addresses_keep_only_running_tasks_on_the_network():
    tasks = [
        task("s1", "10.0.1.12"),
        task("s1", "10.0.1.3"),
        task("s1", "10.0.1.4", state="starting"),
        task("s1", "10.0.1.5", desired="shutdown"),
        task("s1", "10.0.2.6", net="other-net"),
    ]
    # Sorted numerically, not as text.
    assert gen.task_addresses(tasks, "my-net") == ["10.0.1.3", "10.0.1.12"]


def test_tasks_on_nodes_the_swarm_sees_down_are_left_out():
    nodes = [{"ID": "n1", "Status": {"State": "ready"}}, {"ID": "n2", "Status": {"State": "down"}},
             {"ID": "n3", "Status": {"State": "unknown"}}]
    down = gen.down_nodes(nodes)
    assert down == {"n2", "n3"}
    tasks = [task("s1", "10.0.1.3"), task("s1", "10.0.1.4", node="n2"), task("s1", "10.0.1.5", node="n3")]
    assert gen.task_addresses(tasks, "my-net", down) == ["10.0.1.3"]
    vhosts, _problems = gen.virtual_hosts([WEB], tasks, "my-net", down)
    assert vhosts[0].servers == ("10.0.1.3:8080",)


def test_task_addresses_match_the_network_id_too():
    assert gen.task_addresses([task("s1", "10.0.1.3")], "my-net-id") == ["10.0.1.3"]


def test_only_labelled_services_get_a_virtual_host():
    services = [WEB, service("s2", "db")]
    tasks = [task("s1", "10.0.1.3"), task("s2", "10.0.1.4")]
    vhosts, problems = gen.virtual_hosts(services, tasks, "my-net")
    assert vhosts == [gen.VirtualHost("web.example", ("web",), ("10.0.1.3:8080",))]
    assert problems == []


def test_port_defaults_to_80_and_hosts_split_on_commas():
    svc = service("s1", "site", {"picluster.proxy.host": "A.example, b.example,"})
    vhosts, _problems = gen.virtual_hosts([svc], [task("s1", "10.0.1.3")], "my-net")
    assert [(v.host, v.servers) for v in vhosts] == [
        ("a.example", ("10.0.1.3:80",)), ("b.example", ("10.0.1.3:80",))]


def test_services_sharing_a_host_are_merged():
    blue = service("s1", "blue", {"picluster.proxy.host": "app.example"})
    green = service("s2", "green", {"picluster.proxy.host": "app.example", "picluster.proxy.port": "81"})
    vhosts, _problems = gen.virtual_hosts([blue, green], [task("s1", "10.0.1.3"), task("s2", "10.0.1.4")], "my-net")
    assert vhosts == [gen.VirtualHost("app.example", ("blue", "green"), ("10.0.1.3:80", "10.0.1.4:81"))]


@pytest.mark.parametrize("bad", ["bad host", "x;}", "a..b", "-lead.example", "$host"])
def test_invalid_host_names_are_reported_not_rendered(bad):
    svc = service("s1", "evil", {"picluster.proxy.host": f"{bad},ok.example"})
    vhosts, problems = gen.virtual_hosts([svc], [task("s1", "10.0.1.3")], "my-net")
    assert [v.host for v in vhosts] == ["ok.example"]
    assert len(problems) == 1 and "evil" in problems[0]


@pytest.mark.parametrize("port", ["0", "70000", "http", "8o"])
def test_a_bad_port_skips_the_service(port):
    svc = service("s1", "web", {"picluster.proxy.host": "web.example", "picluster.proxy.port": port})
    vhosts, problems = gen.virtual_hosts([svc], [task("s1", "10.0.1.3")], "my-net")
    assert vhosts == [] and "not a port" in problems[0]


def test_wildcard_host_is_accepted():
    assert gen.parse_hosts("*.apps.example") == (["*.apps.example"], [])


def test_render_has_a_plain_default_server():
    text = gen.render([], gen.Settings())
    assert "listen 80 default_server;" in text
    assert 'return 404 "no service is published under the host name $host\\n";' in text
    assert "upstream" not in text


def test_render_balances_and_retries_over_every_task():
    vhost = gen.VirtualHost("web.example", ("web",), ("10.0.1.3:8080", "10.0.1.4:8080"))
    text = gen.render([vhost], gen.Settings(connect_timeout="1s", next_upstream_tries=4))
    assert "upstream picluster_web_example {" in text
    assert "server 10.0.1.3:8080 max_fails=1 fail_timeout=5s;" in text
    assert "server 10.0.1.4:8080 max_fails=1 fail_timeout=5s;" in text
    assert "server_name web.example;" in text
    assert "proxy_pass http://picluster_web_example;" in text
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in text
    assert "proxy_next_upstream_tries 4;" in text
    assert "proxy_connect_timeout 1s;" in text


def test_render_answers_503_for_a_service_without_tasks():
    text = gen.render([gen.VirtualHost("web.example", ("web",), ())], gen.Settings())
    assert "upstream" not in text  # nginx refuses an upstream without servers
    assert 'return 503 "web.example: no task of web is running\\n";' in text


def test_render_with_tls_listens_on_both_ports():
    settings = gen.Settings(https_port=443, tls_certificate="/t/cert.pem", tls_key="/t/key.pem")
    text = gen.render([gen.VirtualHost("web.example", ("web",), ("10.0.1.3:80",))], settings)
    assert "listen 443 ssl default_server;" in text
    assert text.count("listen 443 ssl;") == 1
    assert text.count("listen 80;") == 1  # the redirect's (tested below)
    assert "ssl_certificate /t/cert.pem;" in text


def test_render_with_tls_limits_the_protocols_in_every_tls_server():
    """Server by server: in the http context the directive would add to what nginx.conf already enables."""
    settings = gen.Settings(https_port=443, tls_certificate="/t/cert.pem", tls_key="/t/key.pem")
    text = gen.render([gen.VirtualHost("web.example", ("web",), ("10.0.1.3:80",))], settings)
    blocks = text.split("server {")
    assert not any(line.startswith("ssl_protocols") for line in blocks[0].splitlines())
    tls_blocks = [b for b in blocks[1:] if "ssl" in b.split("}")[0] and "listen 443" in b]
    assert len(tls_blocks) == 2 and all("    ssl_protocols TLSv1.2 TLSv1.3;" in b for b in tls_blocks)


def test_render_with_tls_redirects_plain_http_and_sends_hsts():
    settings = gen.Settings(https_port=443, tls_certificate="/t/cert.pem", tls_key="/t/key.pem", https_public_port=8443)
    text = gen.render([gen.VirtualHost("web.example", ("web",), ("10.0.1.3:80",)),
                       gen.VirtualHost("idle.example", ("idle",), ())], settings)
    blocks = text.split("server {")
    redirect = [b for b in blocks if "return 301" in b]
    assert len(redirect) == 1
    assert "listen 80;" in redirect[0] and "server_name web.example idle.example;" in redirect[0]
    assert "return 301 https://$host:8443$request_uri;" in redirect[0]
    pages = [b for b in blocks if "server_name web.example;" in b or "server_name idle.example;" in b]
    assert len(pages) == 2
    for block in pages:  # the pages themselves only over HTTPS, with HSTS
        assert "listen 80" not in block and "listen 443 ssl;" in block
        assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in block
    default = next(b for b in blocks if "default_server" in b)
    assert "listen 80 default_server;" in default  # the health path and unknown names stay on HTTP
    assert "Strict-Transport-Security" not in default
    assert "server_tokens off;" in text


def test_render_with_tls_and_no_redirect_serves_both_ports():
    settings = gen.Settings(https_port=443, tls_certificate="/t/c", tls_key="/t/k", https_redirect=0, hsts_max_age=0)
    text = gen.render([gen.VirtualHost("web.example", ("web",), ("10.0.1.3:80",))], settings)
    assert "return 301" not in text and "Strict-Transport-Security" not in text
    assert "https://$host$request_uri" not in text
    assert text.count("    listen 80;") == 1 and text.count("listen 443 ssl;") == 1


def test_the_redirect_leaves_out_the_default_https_port():
    settings = gen.Settings(https_port=443, tls_certificate="/t/c", tls_key="/t/k")
    text = gen.render([gen.VirtualHost("web.example", ("web",), ("10.0.1.3:80",))], settings)
    assert "return 301 https://$host$request_uri;" in text


def test_render_is_stable():
    vhosts = [gen.VirtualHost("b.example", ("b",), ("10.0.1.4:80",)),
              gen.VirtualHost("a.example", ("a",), ("10.0.1.3:80",))]
    assert gen.render(vhosts, gen.Settings()) == gen.render(list(vhosts), gen.Settings())


def test_settings_from_environment():
    settings = gen.Settings.from_env({
        "PICLUSTER_PROXY_NETWORK": "front", "PICLUSTER_PROXY_INTERVAL": "5",
        "PICLUSTER_PROXY_NEXT_UPSTREAM_TRIES": "2", "PICLUSTER_PROXY_HTTPS_PORT": "",
    })
    assert (settings.network, settings.interval, settings.next_upstream_tries, settings.https_port) == (
        "front", 5.0, 2, 0)


def _nginx_command(conf_dir: Path) -> list[str] | None:
    """nginx on this host, else the one in the lab's proxy base image."""
    if shutil.which("nginx"):
        return ["nginx", "-t", "-q", "-c", str(conf_dir / "nginx.conf")]
    if shutil.which("docker") and subprocess.run(["docker", "image", "inspect", "picluster/proxy-base:latest"],
                                                 capture_output=True, check=False).returncode == 0:
        return ["docker", "run", "--rm", "--network", "none", "-v", f"{conf_dir}:{conf_dir}:ro",
                "picluster/proxy-base:latest", "nginx", "-t", "-q", "-c", str(conf_dir / "nginx.conf")]
    return None


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    """A certificate and key nginx can load (for `nginx -t` of the TLS text)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls-redirect-hsts"])
def test_nginx_accepts_the_rendered_text(tmp_path, tls):
    command = _nginx_command(tmp_path)
    if command is None:
        pytest.fail("neither nginx nor the picluster/proxy-base image is here: run scripts/setup.sh images")
    vhosts = [gen.VirtualHost("web.example", ("web",), ("10.0.1.3:8080",)),
              gen.VirtualHost("idle.example", ("idle",), ())]
    settings = gen.Settings(http_port=8089)
    if tls:
        cert, key = _self_signed(tmp_path)
        settings = gen.Settings(http_port=8089, https_port=8449, tls_certificate=cert, tls_key=key)
    (tmp_path / "proxy.conf").write_text(gen.render(vhosts, settings))
    # The http context as Debian's nginx.conf has it: its ssl_protocols, which still lists TLSv1 and TLSv1.1.
    (tmp_path / "nginx.conf").write_text(
        f"pid /tmp/nginx-test.pid; error_log stderr; events {{}}\n"
        f"http {{ access_log off; ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; include {tmp_path}/proxy.conf; }}\n")
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "[warn]" not in proc.stderr, proc.stderr


class _FakeNginx:
    """Stands in for the nginx process nginx's container supervises."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def poll(self):
        return None

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)


def _server(tmp_path, monkeypatch, nginx_ok: bool):
    calls = []

    def fake_run(argv, **_kw):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0 if nginx_ok else 1, "", "" if nginx_ok else "bad config")

    monkeypatch.setattr(gen.subprocess, "run", fake_run)
    settings = gen.Settings(config_path=str(tmp_path / "proxy.conf"), shared_path=str(tmp_path / "shared.conf"))
    server = gen.Server(settings)
    server.nginx = _FakeNginx()
    return server, calls


def test_install_reloads_only_when_the_text_changes(tmp_path, monkeypatch):
    server, calls = _server(tmp_path, monkeypatch, nginx_ok=True)
    assert server.install("one\n") is True
    assert server.install("one\n") is False  # unchanged: no test, no reload
    assert server.install("two\n") is True
    assert (tmp_path / "proxy.conf").read_text() == "two\n"
    assert len(calls) == 2 and all(c[:2] == ["nginx", "-t"] for c in calls)
    assert server.nginx.signals == [gen.signal.SIGHUP, gen.signal.SIGHUP]


def test_install_rolls_back_what_nginx_rejects(tmp_path, monkeypatch):
    (tmp_path / "proxy.conf").write_text("good\n")
    server, _calls = _server(tmp_path, monkeypatch, nginx_ok=False)
    assert server.install("broken\n") is False
    assert (tmp_path / "proxy.conf").read_text() == "good\n"
    assert server.nginx.signals == []


def test_nginx_s_side_follows_the_generator_s_file_once_per_new_text(tmp_path, monkeypatch):
    server, calls = _server(tmp_path, monkeypatch, nginx_ok=True)
    server.follow()  # nothing written yet: nothing to do
    assert calls == [] and not (tmp_path / "proxy.conf").exists()
    assert gen.write_if_changed(tmp_path / "shared.conf", "a\n") is True
    assert gen.write_if_changed(tmp_path / "shared.conf", "a\n") is False  # the generator rewrites nothing
    server.follow()
    server.follow()  # the same text: no second test
    assert (tmp_path / "proxy.conf").read_text() == "a\n" and len(calls) == 1
    gen.write_if_changed(tmp_path / "shared.conf", "b\n")
    server.follow()
    assert (tmp_path / "proxy.conf").read_text() == "b\n" and server.nginx.signals == [gen.signal.SIGHUP] * 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_rejected_text_is_not_tried_again_until_the_generator_writes_another(tmp_path, monkeypatch):
    (tmp_path / "proxy.conf").write_text("good\n")
    server, calls = _server(tmp_path, monkeypatch, nginx_ok=False)
    gen.write_if_changed(tmp_path / "shared.conf", "broken\n")
    server.follow()
    server.follow()
    assert len(calls) == 1 and (tmp_path / "proxy.conf").read_text() == "good\n"


def test_a_usage_error_without_docker(capsys):
    assert gen.main(["picluster-proxy-gen", "nonsense"]) == 2
    assert "generate | serve | render" in capsys.readouterr().err
