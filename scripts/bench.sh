#!/usr/bin/env bash
# Benchmarks (not tests): figures are written to bench/results/ and printed.
#  1. swarm_members against 1,000 members in a real Consul agent (wall time
#     and HTTP requests per poll): bench/results/swarm_members.json.
#  2. the whole cluster on the local lab for each size in BENCH_SIZES (nodes
#     besides the master, default 1,3,5): site.yml cold and idempotent, the
#     failure drill; bench/results/cluster.json and docs/benchmarks.md.
#     BENCH_CLUSTER_ARGS passes more options (e.g. --no-baseline).
#  3. losing a worker and losing the first master on 3 masters + 3 nodes
#     (the drills of the cluster scenario): bench/results/failover.json and
#     docs/benchmarks.md.
#  4. site.yml's speed against the baseline commit of issue 19 (42f445c), cold
#     and idempotent, with Ansible's default strategy and with Mitogen, side by
#     side on two labs of 1 master + 5 nodes: bench/results/speed.json and
#     docs/benchmarks.md. BENCH_SPEED_ARGS passes more options (--rounds, ...).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PICLUSTER_ROOT"
export PATH="$VENV_DIR/bin:$PATH" ANSIBLE_CONFIG="$PICLUSTER_ROOT/ansible.cfg" PICLUSTER_CONSUL_BIN="$CONSUL_BIN"
BENCH_SIZES=${BENCH_SIZES:-1,3,5}
say "benchmark: swarm_members over 1,000 members"
python bench/swarm_members_bench.py
say "benchmark: the cluster on the lab, sizes $BENCH_SIZES (1 master + N nodes each)"
# shellcheck disable=SC2086 # BENCH_CLUSTER_ARGS is a list of options
python bench/cluster_bench.py --sizes "$BENCH_SIZES" ${BENCH_CLUSTER_ARGS:-}
say "benchmark: losing a worker and the first master (3 masters + 3 nodes)"
python bench/failover_bench.py
say "benchmark: site.yml's speed against the baseline commit (1 master + 5 nodes, two labs)"
# shellcheck disable=SC2086 # BENCH_SPEED_ARGS is a list of options
python bench/speed_bench.py ${BENCH_SPEED_ARGS:-}
