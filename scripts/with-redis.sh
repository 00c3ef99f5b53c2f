#!/usr/bin/env bash
# Runs a command with a private redis-server on a free loopback port, exported
# as REDIS_URL. The server is stopped when the command ends, whether it passed
# or failed (or this script is interrupted). Never touches any other server.
set -uo pipefail

dir=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-test-redis.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for attempt in $(seq 1 20); do
  port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
    --logfile "$dir/redis.log" --daemonize no >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then pid=""; break; fi     # port taken: try another
    if redis-cli -p "$port" ping >/dev/null 2>&1; then break 2; fi
    sleep 0.05
  done
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; }
done
if [ -z "$pid" ]; then
  echo "error: could not start redis-server on a free loopback port" >&2
  cat "$dir/redis.log" >&2 2>/dev/null
  exit 1
fi

export REDIS_URL="redis://127.0.0.1:$port"
export REDIS_SOCKET="$dir/redis.sock"
echo "redis-server $(redis-server --version | awk '{print $3}') on $REDIS_URL (pid $pid)"
"$@"
status=$?
exit $status
