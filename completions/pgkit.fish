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
complete -c pgkit -l env-file -r -F -d 'dotenv file of variables to set when unset (default ./.env)'
complete -c pgkit -l json -d 'print one JSON document'
complete -c pgkit -s q -l quiet -d 'print no summary, progress, note or status report'
complete -c pgkit -s v -l verbose -d 'print progress details on stderr'
complete -c pgkit -s h -l help -d 'print usage and exit'
complete -c pgkit -l version -d 'print the version and exit'

# Migration commands.
complete -c pgkit -n __pgkit_no_command -a migrate -d 'print the SQL of pending migrations, or apply them'
complete -c pgkit -n __pgkit_no_command -a apply -d 'apply pending migrations of MODULE...'
complete -c pgkit -n __pgkit_no_command -a status -d 'show applied, pending and drifted migrations'
complete -c pgkit -n __pgkit_no_command -a rollback -d 'run down sections of a module'
complete -c pgkit -n __pgkit_no_command -a print-sql -d 'print the SQL of modules for psql or dbmate'
complete -c pgkit -n __pgkit_no_command -a up -d 'create the database if missing, then apply MODULE...'
complete -c pgkit -n __pgkit_no_command -a down -d 'rollback under dbmate'"'"'s name'
complete -c pgkit -n __pgkit_no_command -a baseline -d 'record migrations up to --to VERSION as applied, without running them'
complete -c pgkit -n __pgkit_no_command -a create -d 'create the database named in the connection'
complete -c pgkit -n __pgkit_no_command -a drop -d 'drop the database named in the connection'
complete -c pgkit -n __pgkit_no_command -a wait -d 'wait until the server accepts connections'
complete -c pgkit -n __pgkit_no_command -a dump -d 'write the database'"'"'s schema and bookkeeping as SQL'
complete -c pgkit -n __pgkit_no_command -a load -d 'load what dump wrote into an empty database'
complete -c pgkit -n __pgkit_no_command -a diff -d 'compare the database with what its migrations build (drift)'
complete -c pgkit -n '__fish_seen_subcommand_from diff' -l dev-url -r -d 'database to build the migrations in'
complete -c pgkit -n '__fish_seen_subcommand_from dump load' -l schema-file -r -F -d 'schema file (default the schema_file key, else db/schema.sql)'
set -l pgkit_migration_commands 'migrate apply status rollback print-sql up down baseline diff'
complete -c pgkit -n "__fish_seen_subcommand_from $pgkit_migration_commands" -a '(pgkit __complete modules 2>/dev/null)' -d module
complete -c pgkit -n '__fish_seen_subcommand_from migrate' -l apply -d 'apply the pending migrations instead of printing'
complete -c pgkit -n "__fish_seen_subcommand_from $pgkit_migration_commands" -s d -l migrations-dir -r -a '(__fish_complete_directories)' -d 'directory of your own modules'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply rollback up down baseline' -l lock-wait -r -d 'give up after SECONDS waiting for the migration lock (0 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply rollback up down baseline' -l lock-timeout -r -d 'lock_timeout for the migrations (0.001 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply rollback up down baseline' -l statement-timeout -r -d 'statement_timeout for the migrations (0 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply up' -l allow-out-of-order -d 'apply migrations older than the newest applied one'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply status rollback up down baseline diff' -l wait -r -d 'wait up to SECONDS for the server (0 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply rollback up down baseline' -l lock-retries -r -d 'run a transaction that hit lock_timeout again up to N times (0 to 100)'
complete -c pgkit -n '__fish_seen_subcommand_from apply up' -l dump-schema -d 'write db/schema.sql after a successful run'
complete -c pgkit -n '__fish_seen_subcommand_from baseline' -l to -r -d 'record migrations up to and including VERSION'
complete -c pgkit -n '__fish_seen_subcommand_from drop' -l force -d 'end the other sessions of the database'
complete -c pgkit -n '__fish_seen_subcommand_from wait' -l wait-timeout -r -d 'give up after SECONDS (0 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply up session-purge cache-gc' -l metrics-file -r -F -d 'write the outcome for node_exporter'
complete -c pgkit -n '__fish_seen_subcommand_from status' -l exit-code -d 'exit 3 when a migration is pending or drifted'
complete -c pgkit -n '__fish_seen_subcommand_from rollback down' -l steps -r -d 'roll back the newest N migrations (1 to 1000000)'
complete -c pgkit -n '__fish_seen_subcommand_from rollback down' -l to -r -d 'roll back migrations newer than VERSION'
complete -c pgkit -n '__fish_seen_subcommand_from print-sql' -l format -r -a 'plain dbmate' -d 'SQL layout'
complete -c pgkit -n '__fish_seen_subcommand_from print-sql' -l out -r -F -d 'file (plain) or directory (dbmate) to write'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply' -l lint -d 'lint the pending migrations first; refuse on a finding at or above --fail-on'
complete -c pgkit -n '__fish_seen_subcommand_from migrate apply lint' -l fail-on -r -a 'error warning' -d 'findings at or above this level fail (exit 3)'
complete -c pgkit -n __pgkit_no_command -a lint -d 'check migrations for statements that lock or break a live database'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -a '(pgkit __complete modules 2>/dev/null)' -d module
complete -c pgkit -n '__fish_seen_subcommand_from lint' -F
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l migrations-dir -r -a '(__fish_complete_directories)' -d 'directory of your own modules'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l pending -d 'lint only what apply would run now'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l down -d 'lint the down sections too'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l pg-version -r -d 'server major the rules assume (9 to 99)'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l include -r -d 'enable these rules (comma-separated; all)'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l exclude -r -d 'disable these rules (comma-separated; all)'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l format -r -a 'text json github' -d 'output format'
complete -c pgkit -n '__fish_seen_subcommand_from lint' -l large-table-rows -r -d 'rows from which lock hazards are errors'
complete -c pgkit -n __pgkit_no_command -a new -d 'create a migration file for a module of your own'
complete -c pgkit -n '__fish_seen_subcommand_from new' -l migrations-dir -r -a '(__fish_complete_directories)' -d 'where the module directories are (default ./migrations)'
complete -c pgkit -n __pgkit_no_command -a listen -d 'print (or run a command for) each notification'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l count -r -d 'exit 0 after N notifications (1 to 1000000000)'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l timeout -r -d 'exit 3 after S seconds without a notification (0 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l heartbeat -r -d 'seconds between heartbeats (0: off; up to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from listen' -l exec -r -a '(__fish_complete_command)' -d 'run CMD ARG... for each notification'
complete -c pgkit -n __pgkit_no_command -a notify -d 'send one notification on CHANNEL'

# Session upkeep.
complete -c pgkit -n __pgkit_no_command -a session-purge -d 'delete expired sessions and spent auth tokens'
complete -c pgkit -n '__fish_seen_subcommand_from session-purge' -l batch-size -r -d 'rows deleted per transaction (1 to 1000000)'
complete -c pgkit -n '__fish_seen_subcommand_from session-purge' -l max-seconds -r -d 'start no new batch after SECONDS (0.001 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from session-purge' -l lock-timeout -r -d 'how long a batch may wait for a table lock (0.001 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from session-purge' -l only -r -a 'session auth' -d 'purge only these tables'
complete -c pgkit -n '__fish_seen_subcommand_from session-purge' -l dry-run -d 'count what would be deleted; delete nothing'

# Cache upkeep.
complete -c pgkit -n __pgkit_no_command -a inspect -d 'show what pgkit'\''s tables hold'
complete -c pgkit -n '__fish_seen_subcommand_from inspect' -l exact -d 'count rows exactly instead of reading estimates'
complete -c pgkit -n '__fish_seen_subcommand_from inspect' -l wait -r -d 'wait up to SECONDS for the server (0 to 2147483.647)'
complete -c pgkit -n __pgkit_no_command -a cache-gc -d 'delete expired cache entries in short batches'
complete -c pgkit -n '__fish_seen_subcommand_from cache-gc' -l batch-size -r -d 'rows deleted per batch (1 to 1000000)'
complete -c pgkit -n '__fish_seen_subcommand_from cache-gc' -l max-seconds -r -d 'start no new batch after S seconds (0.001 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from cache-gc' -l lock-timeout -r -d 'how long a batch may wait for a table lock (0.001 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from cache-gc' -l resource-type -r -d 'only entries of this resource type'
complete -c pgkit -n '__fish_seen_subcommand_from cache-gc' -l dry-run -d 'count expired entries without deleting them'

# Background jobs.
complete -c pgkit -n __pgkit_no_command -a queue -d 'enqueue, count, retry, cancel or run background jobs'
complete -c pgkit -n '__fish_seen_subcommand_from queue; and not __fish_seen_subcommand_from enqueue stats retry cancel work' -a 'enqueue stats retry cancel work'
complete -c pgkit -n '__fish_seen_subcommand_from enqueue' -l run-at -r -d 'when the job is due (2026-12-06T17:00:00Z)'
complete -c pgkit -n '__fish_seen_subcommand_from enqueue' -l delay -r -d 'due S seconds from now (0 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from enqueue' -l priority -r -d 'lower runs first (-1000000 to 1000000)'
complete -c pgkit -n '__fish_seen_subcommand_from enqueue' -l unique-key -r -d 'no second job with this key while the first one is live'
complete -c pgkit -n '__fish_seen_subcommand_from enqueue' -l max-attempts -r -d 'attempts before the job is discarded (1 to 1000)'
complete -c pgkit -n '__fish_seen_subcommand_from retry' -l all-discarded -r -d 'retry every discarded job of QUEUE'
complete -c pgkit -n '__fish_seen_subcommand_from work' -l concurrency -r -d 'commands running at once (1 to 256)'
complete -c pgkit -n '__fish_seen_subcommand_from work' -l until-empty -d 'exit when no job is due'
complete -c pgkit -n '__fish_seen_subcommand_from work' -l poll -r -d 'seconds between looks for due jobs (0.001 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from work' -l exec -r -a '(__fish_complete_command)' -d 'run CMD ARG... for each job'
complete -c pgkit -n __pgkit_no_command -a queue-prune -d 'delete finished jobs older than a retention'
complete -c pgkit -n '__fish_seen_subcommand_from queue-prune' -l retention -r -d 'delete jobs that ended longer ago than S seconds (0 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from queue-prune' -l batch-size -r -d 'rows deleted per transaction (1 to 1000000)'
complete -c pgkit -n '__fish_seen_subcommand_from queue-prune' -l max-seconds -r -d 'start no new batch after S seconds (0.001 to 2147483.647)'
complete -c pgkit -n '__fish_seen_subcommand_from queue-prune' -l dry-run -d 'count what would be deleted; delete nothing'
