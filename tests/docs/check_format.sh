#!/usr/bin/env bash
# The tree stays formatted: every C++ file that git tracks passes clang-format with the
# checked-in .clang-format.
set -uo pipefail
root=$1
cd "$root"
if ! command -v clang-format >/dev/null 2>&1; then
  echo "FAIL: clang-format is not installed (scripts/bootstrap installs it)"
  exit 1
fi
files=$(git ls-files '*.cpp' '*.hpp' '*.hpp.in' 2>/dev/null | grep -v '\.in$' || true)
[ -n "$files" ] || files=$(find lib cli tests bench -name '*.cpp' -o -name '*.hpp')
unformatted=()
for file in $files; do
  clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
done
if [ ${#unformatted[@]} -gt 0 ]; then
  printf 'FAIL: not formatted: %s\n' "${unformatted[@]}"
  echo "run: clang-format -i ${unformatted[*]}"
  exit 1
fi
echo "ok: $(wc -w <<<"$files") files are clang-formatted"
