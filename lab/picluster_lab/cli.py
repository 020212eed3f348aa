"""The lab's command line: `python3 lab <command>` from the checkout.

    up      [--name N | --scenario S] [--masters 1] [--nodes 5] [--subnet CIDR] [--bare] [--bare-of HOST]...
            [--arch A] [--arch-of HOST=A]... (emulated ARM nodes: A is arm64 or armhf; docs/lab.md)
            [--instance-config FILE] [--ssh [--controller-user U] [--sudo-password]]
    user-run [--name N | --scenario S] [--playbook P]... [--settings FILE] [--leave-out LIB]... [--mitogen]
             [-- ARGS]
            as the controller user, over SSH, from the tarball: site.yml and the demo by default
    check   [--name N | --scenario S]   each node answers `docker info` and reaches the others
    status  [--name N | --scenario S]   the nodes
    state   [--name N | --scenario S]   the nodes, swarm, networks, services, membership, proxy, dashboard
    down    [--name N | --scenario S]
    inventory [--name N | --scenario S] print the lab's inventory directory (for ansible-playbook -i)
    images  build [--arch A [--no-consul]] | consul --arch A | load [--name N | --scenario S] [--image I]...
            | names | prune
    watch   [--name N | --scenario S] [--inventory DIR] [--max-seconds 1800]
            poll membership every 0.5 s until build/reports/<lab>-watch.stop appears, then write
            build/reports/<lab>-watch.json

--scenario S names molecule scenario S's lab (${PICLUSTER_LAB_PREFIX}mol-S).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import controller, emulation, images, inventory, provision, show
from ._common import ROOT, LabError
from .lab import Lab
from .watch import watch_files, watch_until


def lab_name(args: argparse.Namespace) -> str:
    return inventory.molecule_lab_name(args.scenario) if args.scenario else args.name


def host_arch(text: str) -> tuple[str, str]:
    host, sep, arch = text.partition("=")
    if not sep or not host or arch not in images.ARCHES:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST=ARCH, ARCH one of {', '.join(images.ARCHES)}")
    return host, arch


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python3 lab", description="The local Pi lab on Docker-in-Docker.")
    sub = top.add_subparsers(dest="command", required=True)

    def with_name(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        which = p.add_mutually_exclusive_group()
        which.add_argument("--name", default=os.environ.get("PICLUSTER_LAB", "lab"), help="lab name (default: lab)")
        which.add_argument("--scenario", help="the lab of this molecule scenario")
        return p

    up = with_name(sub.add_parser("up", help="bring the lab up and write its inventory"))
    up.add_argument("--masters", type=int, default=1, help="masters (default 1)")
    up.add_argument("--nodes", type=int, default=5, help="nodes besides the masters (default 5)")
    up.add_argument("--subnet", help="lab network, a /24 (default: derived from the name)")
    up.add_argument("--bare", action="store_true", help="nodes without a Docker engine")
    up.add_argument("--bare-of", action="append", default=[], metavar="HOST",
                    help="one host without a Docker engine (as --bare does for all); repeatable")
    up.add_argument("--arch", default=images.HOST_ARCH, choices=images.ARCHES, help="node architecture")
    up.add_argument("--arch-of", action="append", default=[], metavar="HOST=ARCH", type=host_arch,
                    help="another architecture for one host (arm64, armhf: emulated with qemu-user); repeatable")
    up.add_argument("--instance-config", type=Path, help="also write molecule's instance config to this file")
    up.add_argument("--ssh", action="store_true",
                    help="also the user's way in: a pi user with sudo on every node, a key pair, known_hosts and "
                         "an SSH inventory for the controller user")
    up.add_argument("--controller-user", default=controller.default_controller_user(),
                    help=f"who runs Ansible over SSH (default: you; {controller.CONTROLLER_USER} for root, "
                         "created when missing)")
    up.add_argument("--sudo-password", action="store_true", help="pi's sudo asks for its password (as without "
                    "Raspberry Pi OS's NOPASSWD rule)")
    user = with_name(sub.add_parser("user-run", help="run playbooks as the controller user over SSH, with the "
                                    "collection from its tarball (a lab brought up with --ssh)"))
    user.add_argument("--playbook", action="append", default=[],
                      help=f"a playbook (default: {' '.join(controller.PLAYBOOKS)})")
    user.add_argument("--settings", type=Path, help="a YAML file of settings, put in the inventory's group_vars/all/")
    user.add_argument("--leave-out", action="append", default=[], metavar="LIB",
                      help="a library of requirements.txt to leave out of the controller's venv")
    user.add_argument("--mitogen", action="store_true",
                      help="run under Mitogen's mitogen_linear strategy, installed beside requirements.txt "
                           "(docs/speed.md)")
    user.add_argument("args", nargs=argparse.REMAINDER, help="after --: more ansible-playbook arguments")
    for command, text in (("check", "each node answers `docker info` and reaches the others"),
                          ("status", "the nodes"), ("state", "the nodes and the cluster on them"),
                          ("down", "remove the lab"), ("inventory", "print the lab's inventory directory"),
                          ("vip", "print the lab's virtual IP (empty with one master)")):
        with_name(sub.add_parser(command, help=text))
    watch = with_name(sub.add_parser("watch", help="watch every host's membership in Consul until a stop file "
                                     "appears, then write what it saw as JSON"))
    watch.add_argument("--inventory", type=Path, help="the inventory the playbooks ran with (where the consul role "
                       "keeps pki/consul; default: the lab's own)")
    watch.add_argument("--max-seconds", type=float, default=1800, help="stop after this long anyway (default 1800)")
    watch.add_argument("--ready-file", type=Path, help="made once a poll is answered (wait for it before the change "
                       "to watch); removed when the watch ends")
    img = sub.add_parser("images", help="the node and app images").add_subparsers(dest="images", required=True)
    build = img.add_parser("build", help="build the images on this host (cached by recipe); for arm64 or armhf the "
                           "node images under emulation and Consul cross-compiled")
    build.add_argument("--arch", default=images.HOST_ARCH, choices=images.ARCHES)
    build.add_argument("--no-consul", action="store_true", help="the images only (`images consul` builds Consul)")
    consul = img.add_parser("consul", help="only Consul cross-compiled for arm64 or armhf (beside the host's "
                            "binary; a present one is kept)")
    consul.add_argument("--arch", required=True, choices=[a for a in images.ARCHES if a != images.HOST_ARCH])
    load = with_name(img.add_parser("load", help="copy the app images into a lab's nodes"))
    load.add_argument("--image", action="append", default=[], help="only this image (debian, proxy-base, demo-web)")
    img.add_parser("names", help="print each image's tags")
    img.add_parser("prune", help="remove cached tarballs and images of other recipes")
    return top


def build_consul(arch: str) -> None:
    """Consul cross-compiled for an emulated node: what the lab's consul role copies to it."""
    emulation.build_consul(Path(inventory.consul_binary(arch)), arch, ROOT / "tools" / "consul")


def run(args: argparse.Namespace) -> int:
    if args.command == "up":
        provision.up(lab_name(args), args.masters, args.nodes, subnet=args.subnet, bare=args.bare,
                     bare_hosts=args.bare_of, arch=args.arch,
                     arches=dict(args.arch_of),
                     instance_config=args.instance_config, ssh_user=args.controller_user if args.ssh else None,
                     sudo_password=args.sudo_password)
    elif args.command == "user-run":
        extra = args.args[1:] if args.args[:1] == ["--"] else args.args
        done = Lab(lab_name(args)).user_run(args.playbook or controller.PLAYBOOKS, extra, settings=args.settings,
                                            leave_out=args.leave_out, mitogen=args.mitogen, echo=True)
        return done.returncode
    elif args.command == "down":
        provision.down(lab_name(args))
    elif args.command == "inventory":
        print(Lab(lab_name(args)).inventory.path.parent)
    elif args.command == "vip":
        print(Lab(lab_name(args)).vip)
    elif args.command in ("check", "status", "state"):
        getattr(show, args.command)(Lab(lab_name(args)))
    elif args.command == "watch":
        name = lab_name(args)
        report = watch_until(Lab(name, playbook_inventory=args.inventory), *watch_files(name), args.max_seconds,
                             ready_file=args.ready_file)
        print(report.summary())
    elif args.images == "build":
        images.build(args.arch)
        if args.arch != images.HOST_ARCH and not args.no_consul:
            build_consul(args.arch)
    elif args.images == "consul":
        build_consul(args.arch)
    elif args.images == "load":
        images.load(Lab(lab_name(args)), args.image)
    elif args.images == "names":
        for name, tags in images.names().items():
            print(name, *tags)
    else:
        images.prune()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except LabError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
