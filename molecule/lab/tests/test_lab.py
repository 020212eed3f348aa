"""The lab nodes are usable "Pis": systemd, a Docker engine, reachable peers."""

from picluster_lab import Lab

LAB = Lab.from_env()
testinfra_hosts = LAB.testinfra_hosts()


def test_systemd_booted(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_engine_answers(host):
    assert host.service("docker").is_running
    info = host.check_output("docker info -f '{{.Driver}} {{.ServerVersion}}'")
    driver, version = info.split()
    assert driver == "overlay2", f"inner engine fell back to {driver}; /var/lib/docker must be a host directory"
    assert int(version.split(".")[0]) >= 20


def test_engine_runs_containers(host):
    # No registry is reachable: build a tiny image from the node's own files
    # (echo and the libraries ldd names, of whatever architecture the node is).
    image = Lab.program_image_command("echo", "lab-probe:1")
    out = host.run(f"{image} && docker run --rm lab-probe:1 /usr/bin/echo ok")
    assert out.rc == 0 and out.stdout.strip() == "ok", out.stderr


def test_reaches_every_other_node(host):
    me = host.check_output("hostname")
    for other in LAB.hosts():
        if other == me:
            continue
        assert host.run(f"ping -c1 -W2 {LAB.address(other)}").rc == 0, f"{me} cannot reach {other}"


def test_sshd_runs_as_on_raspberry_pi_os(host):
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_each_node_made_its_own_ssh_host_keys():
    """The image carries no host keys: each node makes its own at first boot."""
    keys = {h: LAB.sh(h, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).split()[1] for h in LAB.hosts()}
    assert len(set(keys.values())) == len(keys), keys


def test_keepalived_baked_in_but_off(host):
    assert host.package("keepalived").is_installed
    assert not host.service("keepalived").is_enabled
    assert not host.service("keepalived").is_running
