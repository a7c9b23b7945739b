#!/usr/bin/env bash
# Entrypoint of localhost/vcredit-postgres (deploy/podman/postgres): the official postgres
# image's contract, for what docker-compose.yml uses of it.
#
#   POSTGRES_PASSWORD   required on the first start (or POSTGRES_PASSWORD_FILE)
#   POSTGRES_USER       superuser made by initdb; default postgres (or POSTGRES_USER_FILE)
#   POSTGRES_DB         database made for it; default POSTGRES_USER (or POSTGRES_DB_FILE)
#   POSTGRES_INITDB_ARGS  extra initdb arguments, split on whitespace; default none
#   PGDATA              data directory; default /var/lib/postgresql/data
#
# On the first start of an empty PGDATA: initdb (UTF8, C.UTF-8, scram-sha-256 for every TCP
# client, trust on the unix socket inside the container), the database, then
# /docker-entrypoint-initdb.d/*.sql, *.sql.gz and *.sh in name order, against a server
# listening on a private socket only. Then, and on every later start, postgres runs as this
# process (PID 1), so the container's stop signal reaches it directly.
set -euo pipefail

log() { echo "entrypoint: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# VAR or VAR_FILE (a mounted secret), not both; prints the value.
env_or_file() {
    local var=$1 default=${2:-} file_var="${1}_FILE"
    if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
        die "both $var and $file_var are set"
    fi
    if [[ -n ${!file_var:-} ]]; then
        cat -- "${!file_var}"
    else
        printf '%s' "${!var:-$default}"
    fi
}

# `docker run IMAGE -c setting=value` means postgres with those options, as in the official
# image; any other command (bash, psql) runs as it is.
if [[ $# -eq 0 || $1 == -* ]]; then
    set -- postgres "$@"
fi
if [[ $1 != postgres ]]; then
    exec "$@"
fi

[[ $(id -u) -ne 0 ]] || die "run as the postgres user (999), not root: postgres refuses to run as root"
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
SOCKET_DIR=/run/postgresql
INIT_SOCKET_DIR=$SOCKET_DIR/initdb
INITDB_DIR=/docker-entrypoint-initdb.d

# The server's lock file and socket go here; with a read-only root filesystem it must be a
# tmpfs (see the Containerfile for why that works although root owns it).
[[ -w $SOCKET_DIR ]] ||
    die "$SOCKET_DIR is not writable by uid $(id -u): with --read-only, mount a tmpfs on it"

mkdir -p -- "$PGDATA" 2>/dev/null || die "cannot create PGDATA $PGDATA"
[[ -O $PGDATA ]] ||
    die "PGDATA $PGDATA is owned by uid $(stat -c %u -- "$PGDATA"), not $(id -u): chown 999:999 it (a new named volume gets the image's owner)"

init_started=0
temp_server=0

# A first start that failed (a bad init script, a stop signal) would leave a data directory
# that has PG_VERSION, and the next start would then serve it without the init scripts'
# work. It found PGDATA empty, so all that is in it is its own: empty it again, so the
# next start runs the whole initialisation again and fails loudly if it still cannot.
on_exit() {
    local status=$?
    if ((init_started && status != 0)); then
        if ((temp_server)); then
            pg_ctl -D "$PGDATA" -m immediate -w stop >&2 || true
        fi
        log "initialisation failed (exit $status); emptying $PGDATA so the next start initialises it again"
        find "$PGDATA" -mindepth 1 -delete || true
    fi
}
trap on_exit EXIT
# PID 1 ignores signals it has no handler for; these make a stop during initialisation exit
# (through on_exit) instead of waiting for the stop timeout's SIGKILL.
trap 'exit 130' INT
trap 'exit 143' TERM

psql_init() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" "$@"
}

run_init_scripts() {
    local f
    shopt -s nullglob
    for f in "$INITDB_DIR"/*; do
        case $f in
        *.sh)
            # As the official image: executable scripts run, others are sourced (and so
            # see this script's variables).
            if [[ -x $f ]]; then
                log "running $f"
                "$f"
            else
                log "sourcing $f"
                # shellcheck disable=SC1090
                source "$f"
            fi
            ;;
        *.sql)
            log "running $f"
            psql_init --dbname "$POSTGRES_DB" -f "$f"
            ;;
        *.sql.gz)
            log "running $f"
            gzip -dc -- "$f" | psql_init --dbname "$POSTGRES_DB"
            ;;
        *) log "ignoring $f" ;;
        esac
    done
    shopt -u nullglob
}

initialise() {
    local password args initdb_args=()
    password=$(env_or_file POSTGRES_PASSWORD)
    [[ -n $password ]] ||
        die "PGDATA is empty and POSTGRES_PASSWORD is not set: it is the password of POSTGRES_USER, the superuser initdb makes (TCP clients must give it)"
    POSTGRES_USER=$(env_or_file POSTGRES_USER postgres)
    POSTGRES_DB=$(env_or_file POSTGRES_DB "$POSTGRES_USER")
    export POSTGRES_USER POSTGRES_DB
    args=$(env_or_file POSTGRES_INITDB_ARGS)
    read -r -a initdb_args <<<"$args"

    # initdb refuses a directory with anything in it; say what to do about it here, and
    # never empty a directory this start did not find empty (see on_exit).
    if [[ -n $(find "$PGDATA" -mindepth 1 -maxdepth 1 -print -quit) ]]; then
        die "PGDATA $PGDATA has files but no PG_VERSION; it is not a data directory (a mount point's lost+found? set PGDATA to a subdirectory)"
    fi
    init_started=1
    log "initialising $PGDATA"
    # The password reaches initdb through a pipe, never a file or the command line.
    initdb --no-instructions --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$password") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
        "${initdb_args[@]}" >&2
    # initdb allows TCP from loopback only; the container's clients come from elsewhere.
    cat >>"$PGDATA/pg_hba.conf" <<'EOF'

# vcredit-postgres: every TCP client needs the password (scram-sha-256).
host all all all scram-sha-256
EOF
    cat >>"$PGDATA/postgresql.conf" <<'EOF'

# vcredit-postgres: the clients are other containers.
listen_addresses = '*'
EOF

    # While the scripts run the server has no TCP port and its socket is in a directory of
    # its own: pg_isready (the compose healthcheck) looks in $SOCKET_DIR, and would call a
    # server ready whose databases the scripts have not made yet. PGHOST points the
    # scripts' own psql there.
    mkdir -p "$INIT_SOCKET_DIR"
    unset PGHOSTADDR
    export PGHOST=$INIT_SOCKET_DIR
    temp_server=1
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$INIT_SOCKET_DIR" -w start >&2
    if [[ $POSTGRES_DB != postgres ]]; then
        log "creating database $POSTGRES_DB"
        psql_init --dbname postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    run_init_scripts
    pg_ctl -D "$PGDATA" -m fast -w stop >&2
    temp_server=0
    unset PGHOST
    rmdir "$INIT_SOCKET_DIR"
    init_started=0
    log "initialisation complete"
}

if [[ -s $PGDATA/PG_VERSION ]]; then
    version=$(<"$PGDATA/PG_VERSION")
    [[ $version == "$PG_MAJOR" ]] ||
        die "PGDATA $PGDATA holds a PostgreSQL $version cluster; this image runs $PG_MAJOR (pg_upgrade, or dump and restore)"
    log "PGDATA $PGDATA holds a database; skipping initialisation"
else
    initialise
fi

trap - EXIT INT TERM
# Server processes (and programs they run, COPY ... PROGRAM) need no copy of the password.
unset POSTGRES_PASSWORD
exec "$@"
