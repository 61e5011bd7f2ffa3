#!/usr/bin/env bash
# The man page must be clean under mandoc -Tlint (style messages included). mandoc's note
# about an outdated mandoc.db concerns this machine's database, not the page, and is ignored.
set -euo pipefail
page=$1
messages=$(mandoc -Tlint -W style "$page" 2>&1 | grep -v 'outdated mandoc.db' || true)
if [ -n "$messages" ]; then
  echo "$messages"
  echo "FAIL: mandoc -Tlint reports problems in $page"
  exit 1
fi
echo "ok: $page is clean under mandoc -Tlint"
