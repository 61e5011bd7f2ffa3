#!/usr/bin/env bash
# Sources the bash completion and asserts what `pgkit <TAB>` offers: every public command of
# `pgkit --help`, the global options after `-`, and words asked from the binary.
set -uo pipefail
# The long options of a --help text's option sections (not of its prose).
options_of() {
  sed -n '/^\(Options\|Positionals\):/,/^$/p' <<<"$1" | grep -E '^ +-' | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}
binary=$1
completion=$2
source "$completion"
failures=0

complete_words() {  # complete_words WORD... : completes the last word
  COMP_WORDS=(pgkit "$@")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  PATH="$(dirname "$binary"):$PATH" _pgkit
  printf '%s\n' "${COMPREPLY[@]}" | sort
}

expect() {  # expect DESCRIPTION EXPECTED_LINES ACTUAL_LINES
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1"
    echo "  expected: $(echo $2)"
    echo "  actual:   $(echo $3)"
    failures=$((failures + 1))
  else
    echo "ok: $1"
  fi
}

commands=$("$binary" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}' | sort)
expect "pgkit <TAB> offers exactly the commands of pgkit --help" "$commands" "$(complete_words "")"

expect "pgkit --ad<TAB> completes --addr" "--addr" "$(complete_words --ad)"
expect "pgkit --con<TAB> offers --config and --connection" "$(printf -- '--config\n--connection')" \
  "$(complete_words --con)"
expect "pgkit --schema x <TAB> still offers the commands" "$commands" \
  "$(complete_words --schema x "")"

for command in $commands; do
  options=$(options_of "$("$binary" "$command" --help)")
  offered=$(complete_words "$command" --)
  for option in $options; do
    if ! grep -qx -- "$option" <<<"$offered"; then
      echo "FAIL: pgkit $command --<TAB> does not offer $option"
      failures=$((failures + 1))
    fi
  done
done

# Connection names come from database.toml in the current directory, or the --config file.
config_dir=$(mktemp -d "${TMPDIR:-/tmp}/pgkit-completion.XXXXXX")
printf '[connections.main]\nurl = "postgresql://h/a"\n[connections.replica]\nhost = "r"\n' \
  > "$config_dir/database.toml"
printf '[connections.staging]\nhost = "s"\n' > "$config_dir/other.toml"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
expect "pgkit --connection <TAB> offers the names of ./database.toml" \
  "$(printf 'main\nreplica')" "$(cd "$config_dir" && complete_words --connection "")"
expect "pgkit --config other.toml --connection <TAB> offers that file's names" "staging" \
  "$(cd "$config_dir" && complete_words --config other.toml --connection "")"
rm -rf "$config_dir"

if [ "$failures" -gt 0 ]; then
  echo "$failures bash completion check(s) failed"
  exit 1
fi
echo "ok: bash completion"
