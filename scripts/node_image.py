#!/usr/bin/env python3
"""Build the lab's "Pi" node images from Debian packages (no registry needed).

Two images come from one debootstrap of Debian bookworm:

* ``picluster/node-bare:<recipe>``: systemd, python3 and the tools Ansible
  needs, but no Docker engine (for the scenario that installs it);
* ``picluster/node:<recipe>``: the same plus Debian's docker.io and the Docker
  SDK for Python, preinstalled the way Hypriot OS shipped its engine.

``<recipe>`` is a hash of this file, so an image is rebuilt only when its
recipe changes. The root filesystems are also kept as tarballs in the cache so
a machine whose Docker data was wiped re-imports them in seconds.

Usage: node_image.py build | name [--bare] | prune
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rootfs import chroot_install

SUITE = "bookworm"
MIRROR = os.environ.get("PICLUSTER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "iproute2",
    "iputils-ping", "curl", "ca-certificates", "procps", "kmod", "iptables",
    "sudo", "gnupg", "less", "netcat-openbsd",
]
ENGINE_PACKAGES = ["docker.io", "python3-docker", "python3-requests"]
# Units that make no sense in a container and only hold boot back or mark the
# system degraded.
MASKED_UNITS = [
    "systemd-firstboot.service", "getty@tty1.service", "console-getty.service",
    "systemd-udevd.service", "systemd-udev-trigger.service",
    "systemd-remount-fs.service", "sys-kernel-config.mount", "sys-kernel-debug.mount",
    "systemd-modules-load.service", "apt-daily.timer", "apt-daily-upgrade.timer",
]
IMPORT_CHANGES = ["ENV container=docker", 'CMD ["/sbin/init"]']

CACHE = Path(os.environ.get("PICLUSTER_CACHE", "/var/cache/picluster"))


def recipe() -> str:
    """Hash of what goes into the images (not of this whole file, so editing
    the script's plumbing does not cost a five-minute rebuild)."""
    parts = [SUITE, BASE_PACKAGES, ENGINE_PACKAGES, MASKED_UNITS, IMPORT_CHANGES,
             inspect.getsource(prepare_rootfs), inspect.getsource(chroot_install)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def image_name(bare: bool = False) -> str:
    return f"picluster/node{'-bare' if bare else ''}:{recipe()}"


def say(msg: str) -> None:
    print(f"==> node image: {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False).returncode == 0


def tarball(bare: bool) -> Path:
    return CACHE / "images" / f"node{'-bare' if bare else ''}-{recipe()}.tar"


def docker_import(tar: Path, name: str) -> None:
    cmd = ["docker", "import"]
    for change in IMPORT_CHANGES:
        cmd += ["-c", change]
    with tar.open("rb") as fh:
        run([*cmd, "-", name], stdin=fh, stdout=subprocess.DEVNULL)
    run(["docker", "tag", name, name.split(":", 1)[0] + ":latest"])


def tar_rootfs(rootfs: Path, dest: Path) -> None:
    tmp = dest.with_suffix(".tmp")
    run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tmp), "."])
    tmp.rename(dest)


def prepare_rootfs(rootfs: Path) -> None:
    """Make a debootstrapped tree boot cleanly as a container."""
    # An empty machine-id makes systemd generate one per container at boot.
    (rootfs / "etc/machine-id").write_text("")
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    for unit in MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / unit
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to("/dev/null")
    # Let Ansible's apt module and the docker role install further packages.
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\n"
    )


def build() -> None:
    if image_exists(image_name()) and image_exists(image_name(bare=True)):
        say(f"present ({image_name()}, {image_name(bare=True)})")
        return
    (CACHE / "images").mkdir(parents=True, exist_ok=True)
    if tarball(False).exists() and tarball(True).exists():
        say("re-importing cached root filesystems")
        docker_import(tarball(True), image_name(bare=True))
        docker_import(tarball(False), image_name())
        return
    if not shutil.which("debootstrap"):
        sys.exit("ERROR: debootstrap is not installed; run scripts/setup.sh packages")
    t0 = time.monotonic()
    debs = CACHE / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="picluster-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"debootstrap {SUITE} (minbase + {len(BASE_PACKAGES)} packages)")
        run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
             f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs), MIRROR],
            stdout=subprocess.DEVNULL)
        prepare_rootfs(rootfs)
        run(["chroot", str(rootfs), "apt-get", "clean"])
        tar_rootfs(rootfs, tarball(True))
        say("installing the engine (" + " ".join(ENGINE_PACKAGES) + ")")
        chroot_install(rootfs, ENGINE_PACKAGES)
        (rootfs / "etc/resolv.conf").write_text("")
        tar_rootfs(rootfs, tarball(False))
    docker_import(tarball(True), image_name(bare=True))
    docker_import(tarball(False), image_name())
    say(f"built {image_name()} and {image_name(bare=True)} in {time.monotonic() - t0:.0f}s")


def prune() -> None:
    """Remove cached tarballs and images of older recipes."""
    current = {tarball(False).name, tarball(True).name}
    for tar in (CACHE / "images").glob("node*.tar"):
        if tar.name not in current:
            tar.unlink()
            say(f"removed {tar}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build")
    name = sub.add_parser("name")
    name.add_argument("--bare", action="store_true")
    sub.add_parser("prune")
    args = parser.parse_args()
    if args.cmd == "build":
        try:
            build()
        except subprocess.CalledProcessError as err:
            sys.exit(f"ERROR: building the node image failed at: {' '.join(map(str, err.cmd))}")
    elif args.cmd == "name":
        print(image_name(bare=args.bare))
    else:
        prune()


if __name__ == "__main__":
    main()
