#!/usr/bin/env bash
# scripts/check-layers passes on the project, and fails on a tree that breaks each of its rules.
#   check_layers.sh ROOT
set -euo pipefail
root=$1
"$root/scripts/check-layers" "$root"

bad=$(mktemp -d)
trap 'rm -rf "$bad"' EXIT
mkdir -p "$bad/lib/src/core" "$bad/lib/src/wire" "$bad/cli" "$bad/docs"
cat > "$bad/lib/src/core/bad.cpp" <<'CODE'
#include "wire/wire.hpp"
void f(PGconn* c) { PQclear(PQexec(c, "")); const char* s = "23505"; }
// "40001" and PQexec( in a comment are fine
CODE
echo 'As DESIGN.md says.' > "$bad/docs/page.md"
status=0
out=$("$root/scripts/check-layers" "$bad") || status=$?
echo "$out"
[ "$status" -eq 1 ] || { echo "FAIL: exit $status on a tree that breaks every rule"; exit 1; }
for expected in "bad.cpp:1: core/ includes wire/" "bad.cpp:2: libpq's PQsend/PQexec" \
                "bad.cpp:2: a SQLSTATE literal" "page.md:1: cites DESIGN.md"; do
  grep -qF "$expected" <<< "$out" || { echo "FAIL: no violation '$expected'"; exit 1; }
done
[ "$(grep -c 'bad.cpp:3' <<< "$out" || true)" -eq 0 ] || { echo "FAIL: a comment was flagged"; exit 1; }
echo "ok"
