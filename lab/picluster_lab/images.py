"""The lab's images, built here from Debian packages (no registry is reachable).

One builder, one debootstrap path. A *family* is one debootstrap of Debian
bookworm and *layers* installed on it one after the other; each layer's tree
is packed as a tarball and imported as an image:

* node family (the "Pis"): ``picluster/node-bare`` (systemd, python3, sshd and
  what Ansible needs, like a fresh Raspberry Pi OS) and ``picluster/node``
  (plus Debian's docker.io and the Docker SDK, as Hypriot OS shipped its
  engine, and keepalived, installed but not enabled);
* app family (what real Pis would pull): ``picluster/debian`` (python3),
  ``picluster/proxy-base`` (plus nginx and the Python Docker and Consul
  clients: the base the reverse_proxy and dashboard roles build on), and
  ``picluster/demo-web`` (a tiny http.server app on the debian image, made
  with `docker build`).

Images are tagged with a hash of their family's recipe (what goes in, not
this file's plumbing) and a stable tag; tarballs are kept under
$PICLUSTER_CACHE/images, so a wiped engine re-imports them in seconds.
`load` copies the app images into a lab's nodes (`docker save | docker exec
-i NODE docker load`), skipping what a node already holds.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import emulation
from ._common import CACHE, LabError, docker, say

if TYPE_CHECKING:
    from .lab import Lab

SUITE = "bookworm"
MIRROR = os.environ.get("PICLUSTER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}
HOST_ARCH = DEBIAN_ARCHES.get(platform.machine(), platform.machine())
ARCHES = ("amd64", "arm64", "armhf")
IMAGES = CACHE / "images"

Step = Callable[[Path], None]


# --- steps: edits of a root filesystem (their source is part of the recipe) ----


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def debootstrap(rootfs: Path, packages: tuple[str, ...], arch: str) -> None:
    debs = CACHE / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", f"--arch={arch}", f"--cache-dir={debs}",
         f"--include={','.join(packages)}", SUITE, str(rootfs), MIRROR], stdout=subprocess.DEVNULL)
    run(["chroot", str(rootfs), "apt-get", "clean"])


def chroot_install(rootfs: Path, packages: tuple[str, ...]) -> None:
    """Install packages into the tree without starting their services."""
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    proc = rootfs / "proc"
    run(["mount", "-t", "proc", "proc", str(proc)])
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["chroot", str(rootfs), "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
            env=env, stdout=subprocess.DEVNULL)
        run(["chroot", str(rootfs), "apt-get", "clean"])
    finally:
        run(["umount", str(proc)])
        policy.unlink()


def apt_sources(rootfs: Path) -> None:
    """Let Ansible's apt module and the roles install further packages."""
    (rootfs / "etc/apt/sources.list").write_text(f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\n")


def no_resolv_conf(rootfs: Path) -> None:
    """Docker gives every container its own; the build host's must not ship."""
    (rootfs / "etc/resolv.conf").write_text("")


MASKED_UNITS = (
    "systemd-firstboot.service", "getty@tty1.service", "console-getty.service",
    "systemd-udevd.service", "systemd-udev-trigger.service",
    "systemd-remount-fs.service", "sys-kernel-config.mount", "sys-kernel-debug.mount",
    "systemd-modules-load.service", "apt-daily.timer", "apt-daily-upgrade.timer",
)


def boots_as_container(rootfs: Path) -> None:
    """Make the tree boot cleanly as a container: a machine-id made per
    container at boot, and no units that only hold boot back or mark the
    system degraded in a container."""
    (rootfs / "etc/machine-id").write_text("")
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    for unit in MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / unit
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to("/dev/null")


SSH_KEYS_UNIT = """\
[Unit]
Description=Make this node's own SSH host keys (the image carries none)
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service
"""


def own_ssh_host_keys(rootfs: Path) -> None:
    """openssh-server made host keys at install time; every container would
    share them. Drop them and make a node's own at its first boot, as
    Raspberry Pi OS does (`ssh-keygen -A` only adds missing keys)."""
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    unit = "regenerate-ssh-host-keys.service"
    (rootfs / "etc/systemd/system" / unit).write_text(SSH_KEYS_UNIT)
    for wants in ("multi-user.target.wants", "ssh.service.wants"):
        (rootfs / "etc/systemd/system" / wants).mkdir(exist_ok=True)
        link = rootfs / "etc/systemd/system" / wants / unit
        link.unlink(missing_ok=True)
        link.symlink_to(f"/etc/systemd/system/{unit}")


def keepalived_off(rootfs: Path) -> None:
    """keepalived is baked in for the virtual-IP roles, but off until a role
    configures it (an admin's `disable`, which package upgrades respect)."""
    run(["chroot", str(rootfs), "systemctl", "disable", "keepalived.service"])
    if list((rootfs / "etc/systemd/system").glob("*.wants/keepalived.service")):
        raise LabError("keepalived.service is still enabled in the node image")


def slim(rootfs: Path) -> None:
    """Application containers need no documentation."""
    for doc in ("usr/share/doc", "usr/share/man", "usr/share/info"):
        shutil.rmtree(rootfs / doc, ignore_errors=True)
        (rootfs / doc).mkdir(parents=True, exist_ok=True)


def tidy_nginx(rootfs: Path) -> None:
    """nginx's own defaults: a site we replace, logs the container should show."""
    default_site = rootfs / "etc/nginx/sites-enabled/default"
    if default_site.is_symlink() or default_site.exists():
        default_site.unlink()
    logs = rootfs / "var/log/nginx"
    if logs.is_dir():
        for name, target in (("access.log", "/dev/stdout"), ("error.log", "/dev/stderr")):
            (logs / name).unlink(missing_ok=True)
            (logs / name).symlink_to(target)


# --- recipes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One image: packages installed on the layer before it (the first one's
    go to debootstrap), then tree edits, packed and imported."""

    name: str
    repository: str
    stable_tag: str
    packages: tuple[str, ...]
    changes: tuple[str, ...]  # `docker import -c`
    steps: tuple[Step, ...] = ()
    tag_prefix: str = ""
    groups: frozenset[str] = frozenset()  # lab groups `load` puts it on by default


@dataclass(frozen=True)
class Derived:
    """An image built with `docker build` on a layer."""

    name: str
    repository: str
    stable_tag: str
    base: str  # a layer's name
    dockerfile: str  # FROM {base}
    files: dict[str, str]
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Family:
    name: str
    layers: tuple[Layer, ...]
    finish: tuple[Step, ...]  # run on every layer before it is packed
    tar_excludes: tuple[str, ...] = ()
    derived: tuple[Derived, ...] = field(default=())


NODE_CHANGES = ("ENV container=docker", 'CMD ["/sbin/init"]')
NODE = Family(
    name="node",
    layers=(
        Layer("node-bare", "picluster/node-bare", "latest", changes=NODE_CHANGES, steps=(own_ssh_host_keys,),
              packages=("systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "iproute2", "iputils-ping",
                        "curl", "ca-certificates", "procps", "kmod", "iptables", "sudo", "gnupg", "less",
                        "netcat-openbsd", "openssh-server")),
        Layer("node", "picluster/node", "latest", changes=NODE_CHANGES, steps=(keepalived_off,),
              packages=("docker.io", "python3-docker", "python3-requests", "keepalived")),
    ),
    finish=(boots_as_container, apt_sources, no_resolv_conf),
)

# The demo app: stdlib only, answers every GET with where it runs. NODE_NAME
# comes from the swarm template {{.Node.Hostname}}; the container's hostname
# is its id unless the service sets one.
DEMO_APP = '''\
import json, os, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"node": os.environ.get("NODE_NAME", "unknown"),
                "container": socket.gethostname(),
                "task": os.environ.get("TASK_NAME", ""),
                "path": self.path}
        data = (json.dumps(body) + "\\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\\n" % (self.address_string(), fmt % args))


ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Hello).serve_forever()
'''
DEMO_DOCKERFILE = """\
FROM {base}
COPY app.py /srv/app.py
ENV PORT=8080
EXPOSE 8080
USER nobody
CMD ["python3", "-u", "/srv/app.py"]
"""
APP = Family(
    name="app",
    layers=(
        Layer("debian", "picluster/debian", SUITE, ("python3", "ca-certificates"), ('CMD ["python3"]',),
              tag_prefix=f"{SUITE}-"),
        Layer("proxy-base", "picluster/proxy-base", "latest",
              ("nginx", "python3-docker", "python3-requests", "python3-consul"),
              ('CMD ["nginx", "-g", "daemon off;"]', "EXPOSE 80"), steps=(tidy_nginx,),
              groups=frozenset({"masters"})),
    ),
    finish=(apt_sources, no_resolv_conf, slim),
    # Package lists are only needed to install more, and an image that needs
    # more runs `apt-get update` first anyway.
    tar_excludes=("./var/lib/apt/lists/*", "./var/cache/apt/*.bin"),
    derived=(Derived("demo-web", "picluster/demo-web", "latest", base="debian",
                     dockerfile=DEMO_DOCKERFILE, files={"app.py": DEMO_APP},
                     groups=frozenset({"masters", "nodes"})),),
)
FAMILIES = (NODE, APP)


def recipe(family: Family, arch: str) -> str:
    """Hash of what goes into a family's images (the steps' source included),
    not of this module's plumbing: editing that costs no five-minute rebuild."""
    steps = {s.__name__: inspect.getsource(s) for s in (debootstrap, chroot_install, *family.finish)}
    parts = [
        SUITE,
        arch,
        [(la.name, la.packages, la.changes, [inspect.getsource(s) for s in la.steps]) for la in family.layers],
        steps,
        family.tar_excludes,
        [(d.name, d.base, d.dockerfile, d.files) for d in family.derived],
    ]
    if arch != HOST_ARCH:
        # Only for foreign architectures, so the host's images keep their recipe.
        parts.append(emulation.recipe_parts())
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def check_arch(arch: str, family: Family | None = None) -> None:
    if arch not in ARCHES:
        raise LabError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHES)}")
    if arch != HOST_ARCH and family is not None and family is not NODE:
        raise LabError(f"only the node images are built for {arch} (emulated nodes); the {family.name} images "
                       f"are {HOST_ARCH}'s")


def tags(item: Layer | Derived, family: Family, arch: str = HOST_ARCH) -> list[str]:
    """The recipe tag first, then the stable one. Foreign architectures get a
    repository of their own (picluster/node-arm64) so stable tags never clash."""
    repo = item.repository if arch == HOST_ARCH else f"{item.repository}-{arch}"
    prefix = item.tag_prefix if isinstance(item, Layer) else ""
    return [f"{repo}:{prefix}{recipe(family, arch)}", f"{repo}:{item.stable_tag}"]


def node_image(bare: bool = False, arch: str = HOST_ARCH) -> str:
    check_arch(arch)
    layer = NODE.layers[0] if bare else NODE.layers[1]
    return tags(layer, NODE, arch)[0]


def tarball(layer: Layer, family: Family, arch: str) -> Path:
    return IMAGES / f"{layer.name}-{arch}-{recipe(family, arch)}.tar"


def image_id(name: str) -> str:
    proc = docker("image", "inspect", "-f", "{{.Id}}", name, check=False, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def present(name: str) -> bool:
    return bool(image_id(name))


# --- building ------------------------------------------------------------------------


def pack(rootfs: Path, dest: Path, excludes: tuple[str, ...]) -> None:
    tmp = dest.with_suffix(".tmp")
    run(["tar", "-C", str(rootfs), "--numeric-owner", *[f"--exclude={p}" for p in excludes], "-cf", str(tmp), "."])
    tmp.rename(dest)


def make_tarballs(family: Family, arch: str) -> None:
    """One debootstrap, then each layer on the one before, packed in turn."""
    if not shutil.which("debootstrap"):
        raise LabError("debootstrap is not installed; run scripts/setup.sh packages")
    with tempfile.TemporaryDirectory(prefix=f"picluster-{family.name}-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        for i, layer in enumerate(family.layers):
            say(f"images: {layer.name}: " + ("debootstrap " + SUITE if i == 0 else "installing")
                + f" {' '.join(layer.packages)}")
            if i == 0:
                debootstrap(rootfs, layer.packages, arch)
            else:
                chroot_install(rootfs, layer.packages)
            for step in (*emulation.steps_for(arch, layer.packages), *layer.steps, *family.finish):
                step(rootfs)
            pack(rootfs, tarball(layer, family, arch), family.tar_excludes)


PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64", "armhf": "linux/arm/v7"}


def docker_import(tar: Path, names: list[str], changes: tuple[str, ...], arch: str = HOST_ARCH) -> None:
    cmd = ["docker", "import"]
    if arch != HOST_ARCH:  # what the image says it holds (`docker image inspect`)
        cmd += ["--platform", PLATFORMS[arch]]
    for change in changes:
        cmd += ["-c", change]
    with tar.open("rb") as fh:
        run([*cmd, "-", names[0]], stdin=fh, stdout=subprocess.DEVNULL)
    for name in names[1:]:
        docker("tag", names[0], name)


def build_derived(item: Derived, family: Family, arch: str) -> None:
    base = next(la for la in family.layers if la.name == item.base)
    with tempfile.TemporaryDirectory(prefix=f"picluster-{item.name}-") as ctx:
        for name, text in item.files.items():
            (Path(ctx) / name).write_text(text)
        (Path(ctx) / "Dockerfile").write_text(item.dockerfile.format(base=tags(base, family, arch)[0]))
        # The classic builder: no buildx plug-in is needed and nothing is pulled.
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        cmd = ["docker", "build", "-q", "--pull=false"]
        for tag in tags(item, family, arch):
            cmd += ["-t", tag]
        proc = subprocess.run([*cmd, ctx], env=env, capture_output=True, text=True, check=False, timeout=600)
        if proc.returncode != 0:
            raise LabError(f"docker build of {item.name} failed: {proc.stderr.strip()[-1500:]}")


def build_family(family: Family, arch: str) -> None:
    wanted = [tags(x, family, arch)[0] for x in (*family.layers, *family.derived)]
    if all(present(name) for name in wanted):
        say(f"images: {family.name}: present ({', '.join(wanted)})")
        return
    t0 = time.monotonic()
    IMAGES.mkdir(parents=True, exist_ok=True)
    if all(tarball(la, family, arch).exists() for la in family.layers):
        say(f"images: {family.name}: re-importing cached root filesystems")
    else:
        make_tarballs(family, arch)
    for layer in family.layers:
        docker_import(tarball(layer, family, arch), tags(layer, family, arch), layer.changes, arch)
    for item in family.derived:
        build_derived(item, family, arch)
    say(f"images: {family.name}: built {', '.join(wanted)} in {time.monotonic() - t0:.0f}s")


def build(arch: str = HOST_ARCH, families: tuple[Family, ...] = FAMILIES) -> None:
    """Build (or find) the images of ``arch``: every family for the host's,
    the node family only for an emulated one (its interpreters set up first)."""
    if arch != HOST_ARCH:
        families = tuple(f for f in families if f is NODE)
    for family in families:
        check_arch(arch, family)
    if arch != HOST_ARCH:
        for done in emulation.ensure_interpreters((arch,)).values():
            say(f"images: {arch}: interpreter {done}")
    try:
        for family in families:
            build_family(family, arch)
    except subprocess.CalledProcessError as err:
        raise LabError(f"building the images failed at: {' '.join(map(str, err.cmd))}") from err


# --- the app images in a lab -----------------------------------------------------------


def app_images() -> dict[str, tuple[list[str], frozenset[str]]]:
    """Image name -> (tags, groups it goes to by default) for what `load` copies."""
    items: list[Layer | Derived] = [*APP.layers, *APP.derived]
    return {item.name: (tags(item, APP), item.groups) for item in items}


def load_one(lab: Lab, host: str, names: list[str]) -> bool:
    """Copy one image (all its tags) into a node unless it already has it."""
    have = lab.run(host, ["docker", "image", "inspect", "-f", "{{.Id}}", *names], timeout=60)
    if have.returncode == 0 and set(have.stdout.split()) == {image_id(names[0])}:
        return False
    save = subprocess.Popen(["docker", "save", *names], stdout=subprocess.PIPE)
    try:
        run(["docker", "exec", "-i", lab.container(host), "docker", "load", "-q"], stdin=save.stdout,
            stdout=subprocess.DEVNULL, timeout=300)
    finally:
        if save.stdout:
            save.stdout.close()
        if save.wait(timeout=60) != 0:
            raise LabError(f"`docker save {' '.join(names)}` failed")
    return True


def load(lab: Lab, only: list[str] | None = None) -> int:
    """Copy the app images into the lab's nodes (building them first if
    needed): by default the proxy base to the masters and the demo app to
    every node; `only` picks images and puts them on every node. Three nodes
    at a time: a node's `docker load` mostly waits on its disk."""
    wanted = app_images()
    unknown = set(only or ()) - set(wanted)
    if unknown:
        raise LabError(f"unknown image(s) {sorted(unknown)}; choose from {sorted(wanted)}")
    build(families=(APP,))
    t0 = time.monotonic()
    plan = {host: [names for name, (names, groups) in wanted.items()
                   if ((name in only) if only else (lab.group(host) in groups))] for host in lab.hosts()}

    def into(host: str) -> int:
        loaded = 0
        for names in plan[host]:
            try:
                copied = load_one(lab, host, names)
            except subprocess.CalledProcessError as err:
                raise LabError(f"loading {names[0]} into {host} failed: {err}") from err
            if copied:
                loaded += 1
                say(f"images: loaded {names[0]} into {host}")
        return loaded

    with ThreadPoolExecutor(max_workers=3) as pool:
        loaded = sum(pool.map(into, [host for host in plan if plan[host]]))
    say(f"images: lab {lab.name}: {loaded} image copies loaded in {time.monotonic() - t0:.0f}s")
    return loaded


def names(arch: str = HOST_ARCH) -> dict[str, list[str]]:
    return {item.name: tags(item, fam, arch) for fam in FAMILIES for item in (*fam.layers, *fam.derived)}


def prune() -> None:
    """Remove cached tarballs and images of other recipes (other checkouts'
    included: they share this engine and this cache)."""
    current = {tarball(la, fam, HOST_ARCH).name for fam in FAMILIES for la in fam.layers}
    current |= {tarball(la, NODE, arch).name for arch in ARCHES for la in NODE.layers}
    for tar in IMAGES.glob("*.tar"):
        if tar.name not in current:
            tar.unlink()
            say(f"images: removed {tar}")
    keep = {tag for arch in ARCHES for current_tags in names(arch).values() for tag in current_tags}
    for repo in {t.split(":", 1)[0] for t in keep}:
        listed = docker("images", repo, "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        old = [t for t in listed if t not in keep]
        if old:
            docker("rmi", *old, check=False)
            say(f"images: removed {' '.join(old)}")
