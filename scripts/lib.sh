# Shared helpers for the set-up and lab scripts. Sourced, not run.
# shellcheck shell=bash

PICLUSTER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything expensive is kept here, outside the checkout, so a fresh clone on
# the same machine (CI) reuses it: the venv, the Consul binary, node rootfs.
PICLUSTER_CACHE=${PICLUSTER_CACHE:-/var/cache/picluster}
CONSUL_VERSION=${CONSUL_VERSION:-1.22.3}
VENV_DIR="$PICLUSTER_CACHE/venv-$(sha256sum "$PICLUSTER_ROOT/requirements-dev.txt" | cut -c1-12)"
CONSUL_BIN="$PICLUSTER_CACHE/consul/consul-$CONSUL_VERSION"
# The oldest ansible-core the collection claims (meta/runtime.yml), with the
# collections a user of it can have (community.crypto 2.x: 3.x needs 2.17), taken
# from that release of the ansible package. Molecule scenario base_oldest runs under it.
OLDEST_ANSIBLE_CORE=2.16.19
OLDEST_COLLECTIONS_FROM=ansible==11.13.0
OLDEST_VENV_DIR="$PICLUSTER_CACHE/oldest-ansible"  # not venv-*: scripts and people glob that for the main venv
export PICLUSTER_ROOT PICLUSTER_CACHE CONSUL_VERSION VENV_DIR CONSUL_BIN OLDEST_ANSIBLE_CORE OLDEST_COLLECTIONS_FROM OLDEST_VENV_DIR

say() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Seconds on a clock that never jumps (since boot), for the "took N s" lines:
# the wall clock here has jumped back by an hour during a run.
now() { local up; read -r up _ </proc/uptime; echo "${up%.*}"; }
