#!/usr/bin/env bash
# Installs what the dashboard's browser tests need: Debian's chromium and
# chromium-driver (apt; sudo only when not root), and selenium from PyPI in a
# virtualenv under .build/browser-venv (nothing installed into the system Python).
# Does nothing when they are present. Prints the venv's python path last.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.build/browser-venv"

missing=()
{ command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; } || missing+=(chromium)
{ command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ]; } || missing+=(chromium-driver)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${missing[*]} and no apt-get here; install chromium and chromedriver by hand" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$venv/bin/python" -c 'import selenium' >/dev/null 2>&1; then
  echo "installing selenium into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'selenium>=4.15,<5'
fi
echo "$venv/bin/python"
