#!/usr/bin/env bash
# `make lint`: swift format lint --strict with the repository's .swift-format.
#   - the rules of .swift-format on every Swift file of the package;
#   - swift-format's layout check (its pretty printer) on every file except those listed in
#     scripts/lint-layout-exempt.txt, which are checked for the rules only
#     (--debug-disable-pretty-print, a swift-format option that skips the layout check).
# Exits non-zero on any finding or on a stale entry of the exempt list. Takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}

exempt_list=scripts/lint-layout-exempt.txt
# Benchmarks/ is a package of its own: its .build (checkouts of its dependencies) is not ours.
mapfile -t all < <({ find Sources Tests Chaos Benchmarks Plugins -name .build -prune -o -name '*.swift' -print; echo Package.swift; } | LC_ALL=C sort)
mapfile -t exempt < <(grep -v -e '^#' -e '^[[:space:]]*$' "$exempt_list" | LC_ALL=C sort)

for file in "${exempt[@]}"; do
    if [[ ! -f "$file" ]]; then
        echo "lint: $exempt_list names $file, which does not exist; remove the entry" >&2
        exit 1
    fi
done
mapfile -t checked < <(LC_ALL=C comm -23 <(printf '%s\n' "${all[@]}") <(printf '%s\n' "${exempt[@]}"))

status=0
"$SWIFT" format lint --strict --parallel "${checked[@]}" || status=1
if ((${#exempt[@]} > 0)); then
    "$SWIFT" format lint --strict --parallel --debug-disable-pretty-print "${exempt[@]}" || status=1
fi
if ((status != 0)); then
    echo "lint: swift format lint found the problems above (configuration: .swift-format)" >&2
    exit 1
fi
# The ratchet: name exempt files that now pass the layout check too, so the list shrinks.
if ((${#exempt[@]} > 0)); then
    mapfile -t failing < <("$SWIFT" format lint --parallel "${exempt[@]}" 2>&1 | grep -oE '^[^:]+\.swift' | LC_ALL=C sort -u)
    mapfile -t passing < <(LC_ALL=C comm -23 <(printf '%s\n' "${exempt[@]}") <(printf '%s\n' "${failing[@]}"))
    for file in "${passing[@]}"; do
        [[ -n "$file" ]] && echo "lint: $file now passes the layout check; remove it from $exempt_list"
    done
fi
echo "lint: ${#all[@]} files clean (${#exempt[@]} of them checked for rules only, see $exempt_list)"
