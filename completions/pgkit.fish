# fish completion for pgkit. Words that change (module names, connection names) come from
# `pgkit __complete`.

set -l pgkit_commands

function __pgkit_no_command
    set -l words (commandline -opc)
    set -e words[1]
    set -l skip 0
    for word in $words
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $word
            case --addr --config --connection --schema
                set skip 1
            case '-*'
            case '*'
                return 1
        end
    end
    return 0
end

complete -c pgkit -f
complete -c pgkit -l addr -r -d 'PostgreSQL URL or conninfo to connect to'
complete -c pgkit -l config -r -F -d 'database.toml to read'
complete -c pgkit -l connection -r -a '(pgkit __complete connections 2>/dev/null)' -d 'connection name in database.toml'
complete -c pgkit -l schema -r -d 'schema holding pgkit tables'
complete -c pgkit -l json -d 'print one JSON document'
complete -c pgkit -s q -l quiet -d 'print nothing on success'
complete -c pgkit -s v -l verbose -d 'print progress details on stderr'
complete -c pgkit -s h -l help -d 'print usage and exit'
complete -c pgkit -l version -d 'print the version and exit'

complete -c pgkit -n __pgkit_no_command -a listen -d 'print (or run a command for) each notification'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l count -r -d 'exit 0 after N notifications'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l timeout -r -d 'exit 3 after S seconds without a notification'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l heartbeat -r -d 'seconds between heartbeats (0: off)'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l exec -r -a '(__fish_complete_command)' -d 'run CMD ARG... for each notification'
complete -c pgkit -n __pgkit_no_command -a notify -d 'send one notification on CHANNEL'
