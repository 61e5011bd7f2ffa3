#!/usr/bin/env bash
# Docs move with code: every command and long option that `pgkit --help` and
# `pgkit COMMAND --help` show must appear in man/pgkit.1, all three completions and (commands)
# in the README; every exit code in the man page and in --help.
set -uo pipefail
# The long options of a --help text's option sections (not of its prose).
options_of() {
  sed -n '/^\(Options\|Positionals\):/,/^$/p' <<<"$1" | grep -E '^ +-' | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}
binary=$1
root=$2
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

man_text=$(mandoc -Tascii -Owidth=300 "$root/man/pgkit.1" | sed 's/.\x08//g')
bash_file=$root/completions/pgkit.bash
zsh_file=$root/completions/_pgkit
fish_file=$root/completions/pgkit.fish

check_option() {  # check_option OPTION WHERE
  local option=$1 where=$2 name=${1#--}
  grep -qE -- "(^|[^a-z-])$option([^a-z-]|$)" <<<"$man_text" || fail "$option ($where) is not in man/pgkit.1"
  grep -qE -- "(^|[^a-z-])$option([^a-z-]|$)" "$bash_file" || fail "$option ($where) is not in completions/pgkit.bash"
  grep -qE -- "(^|[^a-z-])$option([^a-z-]|$)" "$zsh_file" || fail "$option ($where) is not in completions/_pgkit"
  grep -qE -- "-l $name([^a-z-]|$)" "$fish_file" || fail "$option ($where) is not in completions/pgkit.fish"
}

help=$("$binary" --help)
for option in $(options_of "$help"); do
  check_option "$option" "global"
done
for code in 0 1 2 3; do
  grep -qE "^ +$code +[A-Za-z]" <<<"$man_text" || fail "exit code $code is not in the man page's EXIT STATUS"
  grep -qE "^ +$code +[a-z]" <<<"$help" || fail "exit code $code is not in pgkit --help"
done

commands=$(sed -n '/^Subcommands:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF {print $1}')
for command in $commands; do
  grep -qE "^ +pgkit $command( |$)|^ +$command( |$)" <<<"$man_text" || fail "command $command is not in man/pgkit.1"
  grep -qE "_pgkit_commands=.*(\"| )$command( |\")" "$bash_file" || fail "command $command is not in completions/pgkit.bash"
  grep -qE "'$command:" "$zsh_file" || fail "command $command is not in completions/_pgkit"
  grep -qE -- "-a $command( |$)" "$fish_file" || fail "command $command is not in completions/pgkit.fish"
  grep -qE "\`pgkit $command( |\`)" "$root/README.md" || fail "command $command is not in README.md"
  for option in $(options_of "$("$binary" "$command" --help)"); do
    check_option "$option" "$command"
  done
done

# The README's Commands table is one table: its `pgkit ...` rows are not split by prose.
runs=$(awk '/^## Commands/ {on = 1; next} on && /^## / {on = 0} on' "$root/README.md" |
  awk '{row = ($0 ~ /^\| `pgkit /); if (row && !previous) runs++; previous = row} END {print runs + 0}')
[ "$runs" -eq 1 ] || fail "README.md's Commands table is split in $runs parts"

if [ "$failures" -gt 0 ]; then
  echo "$failures documentation check(s) failed"
  exit 1
fi
echo "ok: --help, man page, completions and README agree ($(wc -w <<<"$commands") commands)"
