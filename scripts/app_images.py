#!/usr/bin/env python3
"""Build the application images the lab needs, from Debian packages (no registry).

No registry can be reached from the lab, so the images that real Pis would
pull (``debian:bookworm-slim`` for the proxy, a small web app for the demo) are
made here from one debootstrap of Debian bookworm:

* ``picluster/debian:bookworm``: minbase + python3 and ca-certificates;
* ``picluster/proxy-base``: the same plus nginx, python3-docker and
  python3-consul: the base the ``reverse_proxy`` role builds its
  ``picluster/proxy`` image from, and the ``dashboard`` role its
  ``picluster/dashboard`` image;
* ``picluster/demo-web``: the base plus a tiny http.server app that answers
  with its node name and container name (``playbooks/demo.yml`` deploys it).

Every image is tagged with a hash of its recipe (and with a stable tag:
``bookworm`` / ``latest``); root filesystems are cached as tarballs under
``$PICLUSTER_CACHE/images`` so a wiped engine re-imports them in seconds.

``load`` copies the images into a lab's nodes (``docker save | docker exec -i
<node> docker load``): the proxy base to the masters, the others to every node;
an image a node already holds (same id) is skipped. ``--image`` picks images
(any of debian, proxy-base, demo-web) and loads them into every node.

Usage: app_images.py build | load --lab NAME [--image NAME]... | names | prune
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
BASE_PACKAGES = ["python3", "ca-certificates"]
PROXY_PACKAGES = ["nginx", "python3-docker", "python3-requests", "python3-consul"]
# Left out of the images: package lists are only needed to install more, and
# an image that needs more runs `apt-get update` first anyway.
TAR_EXCLUDES = ["./var/lib/apt/lists/*", "./var/cache/apt/*.bin"]
LAB_LABEL = "io.picluster.lab"
CACHE = Path(os.environ.get("PICLUSTER_CACHE", "/var/cache/picluster"))

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


def recipe() -> str:
    """Hash of what goes into the images, not of this script's plumbing."""
    parts = [SUITE, BASE_PACKAGES, PROXY_PACKAGES, DEMO_APP, DEMO_DOCKERFILE, TAR_EXCLUDES,
             inspect.getsource(prepare_rootfs), inspect.getsource(chroot_install),
             inspect.getsource(tidy_nginx)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def images() -> dict[str, list[str]]:
    """Each image's tags: the recipe hash first, then the stable tag."""
    h = recipe()
    return {
        "debian": [f"picluster/debian:bookworm-{h}", "picluster/debian:bookworm"],
        "proxy-base": [f"picluster/proxy-base:{h}", "picluster/proxy-base:latest"],
        "demo-web": [f"picluster/demo-web:{h}", "picluster/demo-web:latest"],
    }


# Which lab nodes get which image by default (by the node's io.picluster.group
# label). The plain base goes nowhere unless asked for (--image debian): the
# demo image already carries it.
IMAGE_GROUPS = {"debian": set(), "proxy-base": {"masters"}, "demo-web": {"masters", "nodes"}}


def say(msg: str) -> None:
    print(f"==> app images: {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def image_id(name: str, node: str | None = None) -> str:
    cmd = ["docker", "image", "inspect", "-f", "{{.Id}}", name]
    if node:
        cmd = ["docker", "exec", node, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def tarball(kind: str) -> Path:
    return CACHE / "images" / f"app-{kind}-{recipe()}.tar"


def docker_import(tar: Path, tags: list[str], changes: list[str]) -> None:
    cmd = ["docker", "import"]
    for change in changes:
        cmd += ["-c", change]
    with tar.open("rb") as fh:
        run([*cmd, "-", tags[0]], stdin=fh, stdout=subprocess.DEVNULL)
    for tag in tags[1:]:
        run(["docker", "tag", tags[0], tag])


def tar_rootfs(rootfs: Path, dest: Path) -> None:
    tmp = dest.with_suffix(".tmp")
    excludes = [f"--exclude={pattern}" for pattern in TAR_EXCLUDES]
    run(["tar", "-C", str(rootfs), "--numeric-owner", *excludes, "-cf", str(tmp), "."])
    tmp.rename(dest)


def prepare_rootfs(rootfs: Path) -> None:
    """Slim the tree down to what an application container needs."""
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\n"
    )
    (rootfs / "etc/resolv.conf").write_text("")
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


def make_rootfs_tarballs() -> None:
    """One debootstrap gives both root filesystems (base, then base + proxy)."""
    if not shutil.which("debootstrap"):
        sys.exit("ERROR: debootstrap is not installed; run scripts/setup.sh packages")
    debs = CACHE / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="picluster-app-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"debootstrap {SUITE} minbase + {' '.join(BASE_PACKAGES)}")
        run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
             f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs), MIRROR],
            stdout=subprocess.DEVNULL)
        run(["chroot", str(rootfs), "apt-get", "clean"])
        prepare_rootfs(rootfs)
        tar_rootfs(rootfs, tarball("debian"))
        say("installing " + " ".join(PROXY_PACKAGES))
        chroot_install(rootfs, PROXY_PACKAGES)
        tidy_nginx(rootfs)
        prepare_rootfs(rootfs)
        tar_rootfs(rootfs, tarball("proxy-base"))


def build_demo(base: str, tags: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="picluster-demo-web-") as ctx:
        (Path(ctx) / "app.py").write_text(DEMO_APP)
        (Path(ctx) / "Dockerfile").write_text(DEMO_DOCKERFILE.format(base=base))
        # The classic builder: no buildx plug-in is needed and nothing is pulled.
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        cmd = ["docker", "build", "-q", "--pull=false"]
        for tag in tags:
            cmd += ["-t", tag]
        proc = subprocess.run([*cmd, ctx], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise subprocess.CalledProcessError(proc.returncode, proc.args)


def build() -> None:
    wanted = images()
    if all(image_id(tags[0]) for tags in wanted.values()):
        say("present (" + ", ".join(tags[0] for tags in wanted.values()) + ")")
        return
    t0 = time.monotonic()
    (CACHE / "images").mkdir(parents=True, exist_ok=True)
    if not (tarball("debian").exists() and tarball("proxy-base").exists()):
        make_rootfs_tarballs()
    else:
        say("re-importing cached root filesystems")
    docker_import(tarball("debian"), wanted["debian"], ['CMD ["python3"]'])
    docker_import(tarball("proxy-base"), wanted["proxy-base"],
                  ['CMD ["nginx", "-g", "daemon off;"]', "EXPOSE 80"])
    build_demo(wanted["debian"][0], wanted["demo-web"])
    say(f"built {', '.join(tags[0] for tags in wanted.values())} in {time.monotonic() - t0:.0f}s")


def lab_nodes(lab: str) -> list[tuple[str, str]]:
    """(container, group) of each running node of the lab."""
    out = run(["docker", "ps", "--filter", f"label={LAB_LABEL}={lab}",
               "--format", '{{.Names}} {{.Label "io.picluster.group"}}'],
              capture_output=True, text=True).stdout
    return [tuple(line.split()[:2]) for line in out.splitlines() if line.strip()]  # type: ignore[misc]


def load_one(tags: list[str], node: str) -> bool:
    """Copy one image (all its tags) into a node unless it already has it."""
    if image_id(tags[0]) == image_id(tags[0], node) and all(image_id(t, node) for t in tags[1:]):
        return False
    save = subprocess.Popen(["docker", "save", *tags], stdout=subprocess.PIPE)
    try:
        run(["docker", "exec", "-i", node, "docker", "load", "-q"], stdin=save.stdout,
            stdout=subprocess.DEVNULL, timeout=300)
    finally:
        if save.stdout:
            save.stdout.close()
        if save.wait(timeout=60) != 0:
            raise subprocess.CalledProcessError(save.returncode, save.args)
    return True


def load(lab: str, only: list[str]) -> None:
    wanted = images()
    unknown = set(only) - set(wanted)
    if unknown:
        sys.exit(f"ERROR: unknown image(s) {sorted(unknown)}; choose from {sorted(wanted)}")
    missing = [tags[0] for tags in wanted.values() if not image_id(tags[0])]
    if missing:
        sys.exit(f"ERROR: {', '.join(missing)} not built on this host; run `scripts/app_images.py build` first")
    nodes = lab_nodes(lab)
    if not nodes:
        sys.exit(f"ERROR: lab '{lab}' has no running nodes; run `scripts/lab.py up --name {lab}` first")
    t0 = time.monotonic()
    loaded = 0
    for kind, tags in wanted.items():
        for node, group in nodes:
            wanted_here = kind in only if only else group in IMAGE_GROUPS[kind]
            if wanted_here and load_one(tags, node):
                loaded += 1
                say(f"loaded {tags[0]} into {node}")
    say(f"lab {lab}: {loaded} image copies loaded in {time.monotonic() - t0:.0f}s")


def prune() -> None:
    """Remove cached tarballs and images of older recipes."""
    current = {tarball("debian").name, tarball("proxy-base").name}
    for tar in (CACHE / "images").glob("app-*.tar"):
        if tar.name not in current:
            tar.unlink()
            say(f"removed {tar}")
    keep = {tag for tags in images().values() for tag in tags}
    for repo in {tags[0].split(":", 1)[0] for tags in images().values()}:
        out = run(["docker", "images", repo, "--format", "{{.Repository}}:{{.Tag}}"],
                  capture_output=True, text=True).stdout.split()
        old = [tag for tag in out if tag not in keep]
        if old:
            run(["docker", "rmi", *old], stdout=subprocess.DEVNULL)
            say(f"removed {' '.join(old)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build", help="build the images on this host (cached)")
    load_p = sub.add_parser("load", help="load the images into a lab's nodes")
    load_p.add_argument("--lab", default=os.environ.get("PICLUSTER_LAB", "lab"), help="lab name (default: lab)")
    load_p.add_argument("--image", action="append", default=[], help="only this image (debian, proxy-base, demo-web)")
    sub.add_parser("names", help="print each image's tags")
    sub.add_parser("prune", help="remove cached tarballs and images of older recipes")
    args = parser.parse_args()
    try:
        if args.cmd == "build":
            build()
        elif args.cmd == "load":
            load(args.lab, args.image)
        elif args.cmd == "names":
            for kind, tags in images().items():
                print(kind, *tags)
        else:
            prune()
    except subprocess.CalledProcessError as err:
        sys.exit(f"ERROR: app images: `{' '.join(map(str, err.cmd))}` failed (exit {err.returncode})")
    except subprocess.TimeoutExpired as err:
        sys.exit(f"ERROR: app images: `{' '.join(map(str, err.cmd))}` timed out")


if __name__ == "__main__":
    main()
