#!/usr/bin/env bash
# Installs what Conveyor needs beyond Swift: hiredis and zlib (headers + library),
# redis-server, redis-tools (redis-cli, whose --cluster create builds the test cluster, and
# redis-benchmark) and openssl. Does nothing when
# they are already present; uses sudo only when not root.
set -euo pipefail

missing=()
pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
pkg-config --exists zlib 2>/dev/null || missing+=(zlib1g-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; } || missing+=(redis-tools)
# The TLS tests make a throwaway CA and certificates with openssl.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# rediss:// without a CA file verifies against the system trust store (a TLS test checks it).
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing ${missing[*]} and no apt-get here; install hiredis, redis-server and redis-tools by hand" >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d-less containers would otherwise try to start the system redis.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
