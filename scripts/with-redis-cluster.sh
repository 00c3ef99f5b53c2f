#!/usr/bin/env bash
# Runs a command with a private Redis Cluster: 3 masters + 3 replicas, six
# `redis-server --cluster-enabled yes` on free loopback ports, joined with
# `redis-cli --cluster create ... --cluster-replicas 1`. Exports
#   REDIS_CLUSTER_URL  redis+cluster://127.0.0.1:p1,...,127.0.0.1:p6 (every node is a seed)
#   REDIS_CLUSTER_DIR  a directory with, per node, <port>/redis.pid (its pid, rewritten when
#                      the node restarts) and <port>/start.sh (starts that node again with the
#                      same config and data, for fault tests that kill one); ports.txt lists
#                      the ports
# and runs the command. All nodes are stopped when it ends, passed or failed (or this script
# is interrupted). Composes with with-redis.sh: ./scripts/with-redis.sh ./scripts/with-redis-cluster.sh CMD
# A small cluster-node-timeout (1 s) makes a replica take over about 2 s after its master dies.
#
# TLS: with REDIS_CLUSTER_TLS_CERT, REDIS_CLUSTER_TLS_KEY and REDIS_CLUSTER_TLS_CA set (PEM files;
# the certificate must be valid for 127.0.0.1), every node listens with TLS only (clients, the
# cluster bus and replication), client certificates are optional, and the URL is rediss+cluster://.
set -uo pipefail

tls_server=()
cli=(redis-cli)
scheme=redis+cluster
if [ -n "${REDIS_CLUSTER_TLS_CERT:-}" ]; then
  : "${REDIS_CLUSTER_TLS_KEY:?REDIS_CLUSTER_TLS_CERT needs REDIS_CLUSTER_TLS_KEY}"
  : "${REDIS_CLUSTER_TLS_CA:?REDIS_CLUSTER_TLS_CERT needs REDIS_CLUSTER_TLS_CA}"
  tls_server=(--tls-port PORT --port 0 --tls-cluster yes --tls-replication yes
    --tls-cert-file "$REDIS_CLUSTER_TLS_CERT" --tls-key-file "$REDIS_CLUSTER_TLS_KEY"
    --tls-ca-cert-file "$REDIS_CLUSTER_TLS_CA" --tls-auth-clients optional)
  cli=(redis-cli --tls --cacert "$REDIS_CLUSTER_TLS_CA")
  scheme=rediss+cluster
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-test-cluster.XXXXXX")
ports=()
node_pids() {
  for node in "$dir"/*/; do
    cat "$node/redis.pid" 2>/dev/null
  done
}
cleanup() {
  # Nodes shut down at once on SIGTERM (shutdown-on-sigterm "nosave now force"); any still
  # there after 3 s (e.g. started by a process that blocked SIGTERM) get SIGKILL, so no node
  # outlives this script. Test data only: nothing to save.
  for pid in $(node_pids); do kill "$pid" 2>/dev/null; done
  for attempt in $(seq 1 40); do
    alive=0
    for pid in $(node_pids); do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    if [ "$attempt" -eq 30 ]; then
      for pid in $(node_pids); do kill -9 "$pid" 2>/dev/null; done
    fi
    sleep 0.1
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts node <port> daemonized; succeeds when the server answering on the port is the one
# whose pid the node's pid file names (a port taken by someone else is never mistaken for ours).
start_node() {
  local port=$1 node="$dir/$1"
  mkdir -p "$node"
  local listen="--port $port"
  if [ ${#tls_server[@]} -gt 0 ]; then
    listen=$(printf '%q ' "${tls_server[@]}")
    listen=${listen//PORT/$port}
  fi
  cat >"$node/start.sh" <<EOF
#!/usr/bin/env bash
rm -f "$node/redis.pid"
exec redis-server $listen --bind 127.0.0.1 --cluster-enabled yes \\
  --cluster-config-file "$node/nodes.conf" --cluster-node-timeout 1000 \\
  --cluster-replica-validity-factor 0 --repl-diskless-sync-delay 0 --save '' --appendonly no --dir "$node" \\
  --shutdown-on-sigterm "nosave now force" \\
  --logfile "$node/redis.log" --pidfile "$node/redis.pid" --daemonize yes
EOF
  chmod +x "$node/start.sh"
  "$node/start.sh" >/dev/null 2>&1 || return 1
  for _ in $(seq 1 100); do
    local pid
    pid=$(cat "$node/redis.pid" 2>/dev/null)
    if [ -n "$pid" ]; then
      kill -0 "$pid" 2>/dev/null || return 1
      local answered
      answered=$("${cli[@]}" -p "$port" info server 2>/dev/null | tr -d '\r' | awk -F: '/^process_id:/ {print $2}')
      [ "$answered" = "$pid" ] && return 0
    elif grep -q "Could not create server TCP listening socket\|Address already in use" "$node/redis.log" 2>/dev/null; then
      return 1
    fi
    sleep 0.05
  done
  return 1
}

for _ in 1 2 3 4 5 6; do
  started=0
  for attempt in $(seq 1 20); do
    # The cluster bus listens on port + 10000, so stay below 55536.
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
    [ -d "$dir/$port" ] && continue
    if start_node "$port"; then
      ports+=("$port")
      started=1
      break
    fi
    pid=$(cat "$dir/$port/redis.pid" 2>/dev/null)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "${dir:?}/$port"
  done
  if [ "$started" -eq 0 ]; then
    echo "error: could not start a cluster redis-server on a free loopback port" >&2
    exit 1
  fi
done
printf '%s\n' "${ports[@]}" >"$dir/ports.txt"

addresses=()
for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
if ! "${cli[@]}" --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1; then
  echo "error: redis-cli --cluster create failed:" >&2
  cat "$dir/create.log" >&2
  exit 1
fi

# Every node must report cluster_state:ok and know all six nodes, and every replica must have
# finished its first sync (so WAIT and failover tests see replication working) (bounded: ~20 s).
ready=0
for _ in $(seq 1 200); do
  ready=1
  for port in "${ports[@]}"; do
    info=$("${cli[@]}" -p "$port" cluster info 2>/dev/null | tr -d '\r')
    if ! grep -q '^cluster_state:ok' <<<"$info" || ! grep -q '^cluster_known_nodes:6' <<<"$info"; then
      ready=0
      break
    fi
    replication=$("${cli[@]}" -p "$port" info replication 2>/dev/null | tr -d '\r')
    if grep -q '^role:slave' <<<"$replication" && ! grep -q '^master_link_status:up' <<<"$replication"; then
      ready=0
      break
    fi
  done
  [ "$ready" -eq 1 ] && break
  sleep 0.1
done
if [ "$ready" -ne 1 ]; then
  echo "error: the cluster did not reach cluster_state:ok" >&2
  "${cli[@]}" -p "${ports[0]}" cluster info >&2
  exit 1
fi

seeds=$(IFS=,; echo "${addresses[*]}")
export REDIS_CLUSTER_URL="$scheme://$seeds"
export REDIS_CLUSTER_DIR="$dir"
echo "redis cluster (3 masters, 3 replicas) on $REDIS_CLUSTER_URL ($REDIS_CLUSTER_DIR)"
"$@"
status=$?
exit $status
