# bash completion for pgkit                                    -*- shell-script -*-
# Words that change (module names, connection names) come from `pgkit __complete`.

_pgkit_commands="listen notify"
_pgkit_global_options="--addr --config --connection --schema --json --quiet -q --verbose -v --help -h --version"

_pgkit_command_options() {
  case $1 in
    listen) echo "--count --timeout --heartbeat --exec" ;;
    notify) echo "" ;;
    *) echo "" ;;
  esac
}

_pgkit() {
  local cur prev word command="" i
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}

  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      --addr|--config|--connection|--schema) ((i++)); continue ;;
      -*) continue ;;
    esac
    command=$word
    break
  done

  case $prev in
    --addr|--schema|--count|--timeout|--heartbeat) return 0 ;;
    --exec) COMPREPLY=($(compgen -c -- "$cur")); return 0 ;;
    --config) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    --connection)
      COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" __complete connections 2>/dev/null)" -- "$cur"))
      return 0 ;;
  esac

  if [[ -z $command ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$_pgkit_global_options" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$_pgkit_commands" -- "$cur"))
    fi
    return 0
  fi

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_pgkit_command_options "$command") $_pgkit_global_options" -- "$cur"))
    return 0
  fi
  return 0
}

complete -F _pgkit pgkit
