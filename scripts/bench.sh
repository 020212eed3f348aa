#!/usr/bin/env bash
# Benchmarks (not tests): figures are written to bench/results/ and printed.
# Today: swarm_members against 1,000 members in a real Consul agent (wall
# time and HTTP requests per poll).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PICLUSTER_ROOT"
export PATH="$VENV_DIR/bin:$PATH" ANSIBLE_CONFIG="$PICLUSTER_ROOT/ansible.cfg" PICLUSTER_CONSUL_BIN="$CONSUL_BIN"
say "benchmark: swarm_members over 1,000 members"
python bench/swarm_members_bench.py
