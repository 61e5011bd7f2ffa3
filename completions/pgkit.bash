# bash completion for pgkit                                    -*- shell-script -*-
# Words that change (module names, connection names) come from `pgkit __complete`.

_pgkit_commands="migrate apply status rollback print-sql lint new up down baseline create drop wait dump load diff listen notify session-purge cache-gc inspect queue queue-prune"
_pgkit_global_options="--addr --config --connection --schema --env-file --json --quiet -q --verbose -v --help -h --version"

_pgkit_migration_run_options="--migrations-dir -d --lock-wait --lock-timeout --lock-retries --statement-timeout --allow-out-of-order --wait --lint --fail-on --metrics-file"

_pgkit_command_options() {
  case $1 in
    migrate) echo "--apply $_pgkit_migration_run_options" ;;
    status) echo "--migrations-dir --exit-code --wait" ;;
    apply|up) echo "$_pgkit_migration_run_options --dump-schema" ;;
    rollback|down) echo "--steps --to --migrations-dir -d --lock-wait --lock-timeout --lock-retries --statement-timeout --wait" ;;
    baseline) echo "--to --migrations-dir -d --lock-wait --lock-timeout --lock-retries --statement-timeout --wait" ;;
    wait) echo "--wait-timeout" ;;
    drop) echo "--force" ;;
    dump|load) echo "--schema-file" ;;
    diff) echo "--migrations-dir -d --dev-url --wait" ;;
    print-sql) echo "--format --out --migrations-dir" ;;
    lint) echo "--migrations-dir --pending --down --pg-version --include --exclude --fail-on --format --large-table-rows" ;;
    new) echo "--migrations-dir" ;;
    listen) echo "--count --timeout --heartbeat --exec" ;;
    notify) echo "" ;;
    session-purge) echo "--batch-size --max-seconds --lock-timeout --only --dry-run --metrics-file" ;;
    cache-gc) echo "--batch-size --max-seconds --lock-timeout --resource-type --dry-run --metrics-file" ;;
    inspect) echo "--exact --wait" ;;
    queue) echo "--run-at --delay --priority --unique-key --max-attempts --all-discarded --concurrency --until-empty --poll --exec" ;;
    queue-prune) echo "--retention --batch-size --max-seconds --dry-run" ;;
    *) echo "" ;;
  esac
}

# Module names from the binary, including those of any --migrations-dir on the line.
_pgkit_modules() {
  local i dirs=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ ${COMP_WORDS[i]} == --migrations-dir || ${COMP_WORDS[i]} == -d ]] && dirs+=(--migrations-dir "${COMP_WORDS[i+1]}")
  done
  "${COMP_WORDS[0]}" __complete modules "${dirs[@]}" 2>/dev/null
}

_pgkit() {
  local cur prev word command="" i
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}

  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      --addr|--config|--connection|--schema|--env-file) ((i++)); continue ;;
      -*) continue ;;
    esac
    command=$word
    break
  done

  case $prev in
    --addr|--schema|--count|--timeout|--heartbeat) return 0 ;;
    --exec) COMPREPLY=($(compgen -c -- "$cur")); return 0 ;;
    --config|--env-file) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    --connection)
      # Names come from the configuration file the line names with --config, else the default.
      local config=()
      for ((i = 1; i < COMP_CWORD - 1; i++)); do
        [[ ${COMP_WORDS[i]} == --config ]] && config=(--config "${COMP_WORDS[i+1]}")
      done
      COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${config[@]}" __complete connections 2>/dev/null)" -- "$cur"))
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

  case $prev in
    --migrations-dir|-d) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
    --out|--schema-file) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    --format)
      [[ $command == lint ]] && COMPREPLY=($(compgen -W "text json github" -- "$cur")) ||
        COMPREPLY=($(compgen -W "plain dbmate" -- "$cur"))
      return 0 ;;
    --fail-on) COMPREPLY=($(compgen -W "error warning" -- "$cur")); return 0 ;;
    --pg-version|--include|--exclude|--large-table-rows) return 0 ;;
    --lock-wait|--lock-timeout|--lock-retries|--statement-timeout|--wait|--wait-timeout|--steps|--to|--dev-url) return 0 ;;
    --only) COMPREPLY=($(compgen -W "session auth" -- "$cur")); return 0 ;;
    --batch-size|--max-seconds|--resource-type) return 0 ;;
    --run-at|--delay|--priority|--unique-key|--max-attempts|--all-discarded|--concurrency|--poll|--retention) return 0 ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_pgkit_command_options "$command") $_pgkit_global_options" -- "$cur"))
    return 0
  fi
  case $command in
    migrate|apply|status|rollback|print-sql|new|up|down|baseline|diff)
      COMPREPLY=($(compgen -W "$(_pgkit_modules)" -- "$cur")) ;;
    lint) COMPREPLY=($(compgen -W "$(_pgkit_modules)" -- "$cur") $(compgen -f -X '!*.sql' -- "$cur")) ;;
    queue)
      [[ $prev == queue ]] && COMPREPLY=($(compgen -W "enqueue stats retry cancel work" -- "$cur")) ;;
  esac
  return 0
}

complete -F _pgkit pgkit
