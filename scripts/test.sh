#!/usr/bin/env bash
# Every test, in order of cost: linters, ansible-test sanity, unit tests,
# integration tests (real Consul, real Docker), molecule scenarios (lab nodes).
# Usage: scripts/test.sh [lint|sanity|unit|integration|molecule]...
# Each stage runs even when an earlier one failed, so one run shows every
# problem; the exit code is non-zero when any stage failed.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PICLUSTER_ROOT" || exit 1
[ -x "$VENV_DIR/bin/pytest" ] || die "the venv $VENV_DIR is missing; run scripts/setup.sh (or make setup)"
export PATH="$VENV_DIR/bin:$PATH"
export ANSIBLE_CONFIG="$PICLUSTER_ROOT/ansible.cfg"
export PICLUSTER_CONSUL_BIN="$CONSUL_BIN"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
REPORTS="$PICLUSTER_ROOT/build/reports"
mkdir -p "$REPORTS"

stage_lint() {
  ruff check . || return 1
  shellcheck -x scripts/*.sh .ci/run || return 1
  ansible-lint --offline --profile production -q || return 1
  # Each role's defaults/main.yml and meta/argument_specs.yml agree; roles include only entry points.
  python3 tests/lint/role_arguments.py || return 1
  # Nothing on the controller may need root: users run ansible-playbook as themselves.
  python3 tests/lint/controller_become.py || return 1
}

stage_sanity() {
  # ansible-test wants the tree at ansible_collections/<ns>/<name>; a copy in
  # the cache keeps its per-test virtualenvs between runs.
  # One copy per checkout, so two worktrees can run sanity at once.
  local top
  top="$PICLUSTER_CACHE/sanity/$(printf '%s' "$PICLUSTER_ROOT" | sha256sum | cut -c1-8)/ansible_collections/picluster/swarm"
  mkdir -p "$top"
  # Sanity-test exactly what ships: galaxy.yml's build_ignore decides.
  "$VENV_DIR/bin/python" -c 'import sys, yaml; print("\n".join(yaml.safe_load(open("galaxy.yml"))["build_ignore"]))' \
    | sed 's#^#/#' >"$REPORTS/sanity-excludes"
  # Exit 24: a file vanished while copied (a unit test's bytecode, written at
  # the same time): transient by definition, so not part of what ships.
  local copied=0
  rsync -a --delete --delete-excluded --exclude-from="$REPORTS/sanity-excludes" ./ "$top/" || copied=$?
  [ "$copied" = 0 ] || [ "$copied" = 24 ] || return 1
  # Its own venv (ansible-core only): --requirements installs the pinned
  # sanity tools there, away from ansible-lint's. (ansible-test's --venv
  # would fetch a pip bootstrap from a host this machine cannot reach.)
  local venv core
  core=$(grep '^ansible-core==' requirements-dev.txt)
  venv="$PICLUSTER_CACHE/sanity-venv-${core#ansible-core==}"
  if [ ! -x "$venv/bin/ansible-test" ]; then
    python3 -m venv "$venv" && PIP_CACHE_DIR="$PICLUSTER_CACHE/pip" "$venv/bin/pip" install -q \
      --disable-pip-version-check "$core" || return 1
  fi
  local pipver
  pipver=$(grep -hoE "pip='[0-9.]+'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1 | tr -dc '0-9.')
  [ -n "$pipver" ] || { echo "cannot tell which pip ansible-test bootstraps" >&2; return 1; }
  mkdir -p ~/.ansible/test/cache
  cp tests/sanity/get_pip.py ~/.ansible/test/cache/get_pip_"${pipver//./_}".py
  (cd "$top" && PIP_CACHE_DIR="$PICLUSTER_CACHE/pip" PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" sanity \
    --requirements --python 3.11 --color no 2>&1 | grep -v '^Requirement already\|^Collecting\|^  Using\|^Installing') || return 1
}

stage_unit() {
  pytest -q tests/unit --junitxml="$REPORTS/unit.xml"
}

stage_integration() {
  [ -x "$CONSUL_BIN" ] || { echo "Consul binary $CONSUL_BIN is missing: run scripts/setup.sh consul" >&2; return 1; }
  docker info >/dev/null 2>&1 || { echo "no Docker engine answers: run scripts/setup.sh engine" >&2; return 1; }
  # Two halves at once: most of the time goes to waiting on ansible-playbook,
  # Consul agents and the user-path lab, so two cores serve both. Each half's
  # output is printed whole when both are done.
  local rc=0 roles rest
  pytest -q tests/integration/roles --junitxml="$REPORTS/integration-roles.xml" \
    >"$REPORTS/integration-roles.log" 2>&1 &
  roles=$!
  pytest -q tests/integration --ignore=tests/integration/roles --junitxml="$REPORTS/integration.xml" \
    >"$REPORTS/integration.log" 2>&1 &
  rest=$!
  wait "$roles" || rc=1
  wait "$rest" || rc=1
  say "integration: role checks on the controller"
  cat "$REPORTS/integration-roles.log"
  say "integration: plugins, the collection's build, the user's path"
  cat "$REPORTS/integration.log"
  return "$rc"
}

# Scenarios run in two lanes at once. Both lanes take the next scenario from
# one queue whenever they are free, longest first (by their times in the lanes
# on 2026-11-30 at 119c553: cluster 1469 s, lab 1042 s, swarm 617 s, base
# 440 s, docker 241 s, proxy 193 s, base_oldest 146 s), so
# the lanes even out by themselves whatever the machine's load makes of each.
# The machine is CPU-bound either way (2 cores; load 6 to 18 with lanes, 3 to
# 8 without): lanes mostly fill one scenario's waits (drills, TTLs) with the
# other's work. Each scenario's step times are printed after it
# (scripts/step_times.py). MOLECULE_LANES=1 runs them in turn, in that order.
MOLECULE_ORDER=${MOLECULE_ORDER:-cluster lab swarm base docker proxy base_oldest}

run_scenarios() {
  local s rc=0 t0
  for s in "$@"; do
    say "molecule scenario $s"
    t0=$(now)
    # pipefail: molecule's exit status, whatever step_times.py does.
    if molecule test -s "$s" 2>&1 | python3 "$PICLUSTER_ROOT/scripts/step_times.py"; then
      say "molecule scenario $s passed in $(( $(now) - t0 ))s (load $(cut -d' ' -f1-3 /proc/loadavg))"
    else
      say "molecule scenario $s FAILED after $(( $(now) - t0 ))s"; rc=1
    fi
  done
  return $rc
}

# next_scenario QUEUE: print the queue's first scenario and take it off (none
# left: print nothing). Both lanes ask; the lock gives each scenario to one.
next_scenario() {
  # shellcheck disable=SC2016  # the inner shell expands them, from its own arguments
  flock "$1.lock" sh -c 'head -n 1 "$1"; sed -i 1d "$1"' next_scenario "$1"
}

# run_lane QUEUE: scenarios from the queue until it is empty.
run_lane() {
  local s rc=0
  while s=$(next_scenario "$1") && [ -n "$s" ]; do
    run_scenarios "$s" || rc=1
  done
  return $rc
}

stage_molecule() {
  local rc=0 found=() order missing=() a b queue s
  mapfile -t found < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename | sort)
  [ ${#found[@]} -gt 0 ] || { echo "no molecule scenarios found" >&2; return 1; }
  read -ra order <<<"$MOLECULE_ORDER"
  for s in "${found[@]}"; do [[ " ${order[*]} " == *" $s "* ]] || missing+=("$s"); done
  # A scenario the order leaves out would never run: it goes last, said out loud.
  [ ${#missing[@]} -eq 0 ] || { say "molecule: not in MOLECULE_ORDER, run last: ${missing[*]}"; order+=("${missing[@]}"); }
  for s in "${order[@]}"; do
    [[ " ${found[*]} " == *" $s "* ]] || { echo "MOLECULE_ORDER names '$s', which is no scenario under molecule/ (there: ${found[*]})" >&2; return 1; }
  done
  if [ "${MOLECULE_LANES:-2}" = 1 ]; then
    run_scenarios "${order[@]}"
    return
  fi
  queue="$REPORTS/molecule-queue"
  printf '%s\n' "${order[@]}" >"$queue"
  say "molecule: two lanes take the scenarios in turn from one queue (${order[*]}); each lane's log is printed when it ends"
  run_lane "$queue" >"$REPORTS/molecule-lane-a.log" 2>&1 &
  a=$!
  run_lane "$queue" >"$REPORTS/molecule-lane-b.log" 2>&1 &
  b=$!
  wait "$b" || rc=1
  say "molecule: lane B"
  cat "$REPORTS/molecule-lane-b.log"
  wait "$a" || rc=1
  say "molecule: lane A"
  cat "$REPORTS/molecule-lane-a.log"
  grep -h '^==> molecule scenario .* \(passed\|FAILED\)' "$REPORTS"/molecule-lane-[ab].log
  return $rc
}

# lint, sanity, unit and integration only read the checkout and write their
# own reports and labs: next to each other they keep both cores busy (alone,
# lint, sanity and unit mostly use one, and integration waits on Consul agents
# and its lab), so consecutive ones run at once. Each one's output is printed
# whole, in the order asked, when they are all done. Measured on 2 cores,
# quiet: lint, sanity and unit took 198 s in turn and 131 s at once.
# PICLUSTER_STAGES_AT_ONCE=0 runs them in turn.
AT_ONCE=" lint sanity unit integration "

# run_stage NAME: one stage, its output as it comes, its verdict and time.
run_stage() {
  local s=$1 t0
  say "stage $s"
  t0=$(now)
  if "stage_$s"; then
    say "stage $s passed in $(( $(now) - t0 ))s"
  else
    say "stage $s FAILED after $(( $(now) - t0 ))s"
    return 1
  fi
}

main() {
  local stages=("$@") passed=0 failed=0 failures=() s i=0 group pids
  [ ${#stages[@]} -gt 0 ] || stages=(lint sanity unit integration molecule)
  for s in "${stages[@]}"; do
    declare -F "stage_$s" >/dev/null || die "unknown stage '$s'; stages: lint sanity unit integration molecule"
  done
  while [ $i -lt ${#stages[@]} ]; do
    group=()
    while [ $i -lt ${#stages[@]} ] && [ "${PICLUSTER_STAGES_AT_ONCE:-1}" != 0 ] && [[ $AT_ONCE == *" ${stages[$i]} "* ]]; do
      group+=("${stages[$i]}"); i=$((i + 1))
    done
    [ ${#group[@]} -gt 0 ] || { group=("${stages[$i]}"); i=$((i + 1)); }
    if [ ${#group[@]} = 1 ]; then
      if run_stage "${group[0]}"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("${group[0]}"); fi
      continue
    fi
    say "stages ${group[*]} at once; each one's output follows when all are done"
    pids=()
    for s in "${group[@]}"; do
      run_stage "$s" >"$REPORTS/stage-$s.log" 2>&1 &
      pids+=($!)
    done
    for s in "${!group[@]}"; do
      if wait "${pids[$s]}"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("${group[$s]}"); fi
    done
    for s in "${group[@]}"; do cat "$REPORTS/stage-$s.log"; done
  done
  [ $failed -eq 0 ] || echo "failed stages: ${failures[*]}"
  echo "stages: $passed passed, $failed failed"
  [ $failed -eq 0 ]
}
main "$@"
