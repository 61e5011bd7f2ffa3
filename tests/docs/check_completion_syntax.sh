#!/usr/bin/env bash
# Each completion script must parse in its real shell.
set -euo pipefail
dir=$1
bash -n "$dir/pgkit.bash"
zsh -n "$dir/_pgkit"
fish -n "$dir/pgkit.fish"
echo "ok: bash, zsh and fish accept the completion scripts"
