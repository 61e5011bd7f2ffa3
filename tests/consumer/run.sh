#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/consumer against it with
# find_package(pgkit), and runs it against the sandbox server.
set -euo pipefail
build=$1
consumer=$2
extra_prefix=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/pgkit-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$consumer" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix;$extra_prefix" >/dev/null
cmake --build "$work/build" >/dev/null
url=$(sed -n 's/^PGKIT_SANDBOX_URL=//p' "$PGKIT_TEST_SANDBOX")
output=$("$work/build/consumer" "$url")
echo "$output"
expected="says hello from postgres"
if [[ $output != *"$expected"* ]]; then
  echo "FAIL: expected the consumer to print '$expected'"
  exit 1
fi
# pkg-config alone (no CMake): the installed pgkit.pc names every flag and library.
pc_path=$(dirname "$(find "$work/prefix" -name pgkit.pc -print -quit)")
if [ "$pc_path" = . ]; then
  echo "FAIL: pgkit.pc is not installed"
  exit 1
fi
if [ -n "$extra_prefix" ]; then
  while IFS= read -r dir; do pc_path="$pc_path:$dir"; done \
    < <(find "$extra_prefix" -type d -name pkgconfig)
fi
export PKG_CONFIG_PATH="$pc_path${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
flags=$(pkg-config --cflags --libs pgkit)
rpath=-Wl,-rpath,$(pkg-config --variable=libdir libpqxx)
# shellcheck disable=SC2086 # the flags are words
c++ -std=c++17 "$consumer/main.cpp" -o "$work/consumer-pkg-config" $flags "$rpath"
output=$("$work/consumer-pkg-config" "$url")
if [[ $output != *"$expected"* ]]; then
  echo "FAIL: the consumer built with pkg-config printed '$output'"
  exit 1
fi
echo "ok: pkg-config --cflags --libs pgkit builds and links a program"
# The installed package also carries the documentation and completions.
for file in share/man/man1/pgkit.1 share/bash-completion/completions/pgkit \
            share/zsh/vendor-completions/_pgkit share/fish/vendor_completions.d/pgkit.fish bin/pgkit; do
  [ -e "$work/prefix/$file" ] || { echo "FAIL: $file is not installed"; exit 1; }
done
echo "ok: find_package(pgkit) + pgkit::core work from an installed prefix"
