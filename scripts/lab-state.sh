#!/usr/bin/env bash
# Print what a user wants to see after `make lab`: the nodes, and, once the
# roles have built them, the swarm, the Consul membership and the proxy.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
LAB=${1:-lab}
if [ "$LAB" = lab ]; then INVENTORY="$PICLUSTER_ROOT/inventories/lab"; else INVENTORY="$PICLUSTER_ROOT/build/labs/$LAB"; fi
python3 "$PICLUSTER_ROOT/scripts/lab.py" status --name "$LAB"
master=$(docker ps --filter "label=io.picluster.lab=$LAB" --filter "label=io.picluster.group=masters" --format '{{.Names}}' | sort | head -1)
[ -n "$master" ] || exit 0
if docker exec "$master" docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null | grep -q active; then
  echo; echo "== swarm nodes (docker node ls on $master)"
  docker exec "$master" docker node ls
  echo; echo "== overlay networks"
  docker exec "$master" docker network ls --filter driver=overlay
  echo; echo "== services"
  docker exec "$master" docker service ls
fi
if [ -x "$VENV_DIR/bin/ansible-playbook" ] && [ -f "$PICLUSTER_ROOT/playbooks/lab-state.yml" ]; then
  echo; echo "== Consul membership (picluster.swarm.swarm_members)"
  ANSIBLE_CONFIG="$PICLUSTER_ROOT/ansible.cfg" "$VENV_DIR/bin/ansible-playbook" -i "$INVENTORY" \
    "$PICLUSTER_ROOT/playbooks/lab-state.yml" 2>&1 | sed -n '/msg: |-/,/^PLAY RECAP/p' | sed '1d;$d;s/^ *//;/^$/d' || true
fi
# The proxy on the master, and who answers behind it.
addr=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$master")
if docker exec "$master" docker inspect picluster-proxy >/dev/null 2>&1; then
  echo; echo "== reverse proxy: http://$addr/ (route by Host header)"
  if docker exec "$master" docker service inspect demo-web >/dev/null 2>&1; then
    echo "   demo: curl -H 'Host: demo.picluster.lab' http://$addr/   answered, 9 requests, by:"
    for _ in 1 2 3 4 5 6 7 8 9; do
      curl -s -m 5 -H 'Host: demo.picluster.lab' "http://$addr/" || echo '(no answer)'
      echo
    done | grep -v '^$' | sort | uniq -c | sed 's/^/   /'
  fi
fi
# The dashboard, if the dashboard role ran.
if docker exec "$master" docker service inspect picluster-dashboard >/dev/null 2>&1; then
  echo; echo "== dashboard: http://dashboard.picluster.lab/ (through the proxy at $addr)"
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H 'Host: dashboard.picluster.lab' "http://$addr/api/health" || true)
  echo "   health: HTTP $code; user admin, password in $INVENTORY/pki/dashboard/admin"
  echo "   in a browser on this machine: chromium --host-resolver-rules='MAP dashboard.picluster.lab $addr' http://dashboard.picluster.lab/"
  echo "   or: curl -u admin:\$(cat $INVENTORY/pki/dashboard/admin) -H 'Host: dashboard.picluster.lab' http://$addr/api/cluster"
fi
