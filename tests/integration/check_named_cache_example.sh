#!/bin/sh
# Runs docs/cache.md's named cache example ($1, against the server at URL $2) the two ways a glimr user would: with a
# database.toml naming the sandbox (schema docs_glimr), where it prints what each named cache
# holds; and in a directory without one, where pgkit::start's error escapes main and what
# std::terminate prints must still carry the hint.
set -eu
example=$1
url=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/configured" "$dir/empty"
printf '[connections.main]\nurl = "%s"\nschema = "docs_glimr"\n' "$url" \
  > "$dir/configured/database.toml"
out=$(cd "$dir/configured" && "$example")
expected=$(printf 'Ada | <h1>home</h1>\nusers kept, pages cleared')
if [ "$out" != "$expected" ]; then
  echo "unexpected output: $out" >&2
  exit 1
fi
if (cd "$dir/empty" && "$example") > "$dir/out" 2> "$dir/err"; then
  echo "the example succeeded without database.toml" >&2
  exit 1
fi
grep -q 'found no configuration file' "$dir/err"
grep -q '^hint: create database.toml' "$dir/err"
