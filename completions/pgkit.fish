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
function __pgkit_connections
    # Names come from the configuration file the line names with --config, else the default.
    set -l words (commandline -opc)
    set -l config
    for i in (seq (count $words))
        if test "$words[$i]" = --config; and test $i -lt (count $words)
            set config --config $words[(math $i + 1)]
        end
    end
    pgkit $config __complete connections 2>/dev/null
end

complete -c pgkit -l connection -r -a '(__pgkit_connections)' -d 'connection name in database.toml'
complete -c pgkit -l schema -r -d 'schema holding pgkit tables'
complete -c pgkit -l json -d 'print one JSON document'
complete -c pgkit -s q -l quiet -d 'print nothing on success'
complete -c pgkit -s v -l verbose -d 'print progress details on stderr'
complete -c pgkit -s h -l help -d 'print usage and exit'
complete -c pgkit -l version -d 'print the version and exit'
