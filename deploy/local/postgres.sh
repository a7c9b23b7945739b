#!/usr/bin/env bash
# Run the Debian-packaged PostgreSQL for local development and CI on a machine
# without a Docker engine, and make sure the vcredit role/database exist.
#
#   deploy/local/postgres.sh start   # install if needed, start, wait, create role+db, print URL
#   deploy/local/postgres.sh stop
#   deploy/local/postgres.sh status  # exit 0 if online, 3 if not
#
# Uses Debian's postgresql-common wrappers (pg_lsclusters, pg_ctlcluster,
# pg_createcluster) rather than raw pg_ctl, so the cluster lives in the usual
# /etc/postgresql + /var/lib/postgresql layout and needs no systemd.
set -euo pipefail

CLUSTER="main"
DB_USER="vcredit"
DB_PASSWORD="vcredit"
DB_NAME="vcredit"
READY_TIMEOUT="${VCREDIT_PG_READY_TIMEOUT:-30}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Everything below needs root (apt, pg_ctlcluster for a postgres-owned
# cluster); fall back to sudo for developers running as themselves.
SUDO=()
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "must run as root (or have sudo)"
    SUDO=(sudo)
fi

# Run a command (in a subshell) as the cluster owner, who can connect over the unix socket
# with peer auth - no password needed to bootstrap the vcredit role.
as_postgres() (
    # cd / avoids "could not change directory" when the caller's cwd is private.
    cd /
    if [[ $EUID -eq 0 ]] && command -v runuser >/dev/null; then
        runuser -u postgres -- "$@"
    else
        sudo -u postgres -- "$@"
    fi
)

server_installed() {
    command -v pg_ctlcluster >/dev/null && command -v pg_lsclusters >/dev/null &&
        compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}

ensure_installed() {
    if server_installed; then
        return
    fi
    log "installing Debian's postgresql package ..."
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    server_installed || die "postgresql installed but server binaries not found"
}

# Prints "<version> <port> <status>" of our cluster, or nothing if none exists.
cluster_info() {
    pg_lsclusters --no-header 2>/dev/null | awk -v c="$CLUSTER" '$2 == c { print $1, $3, $4; exit }'
}

# The package's postinst normally creates <ver>/main, but not in images built
# with create_main_cluster=false or after someone dropped it - so create it.
ensure_cluster() {
    if [[ -n "$(cluster_info)" ]]; then
        return
    fi
    local version
    version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)"
    [[ -n "$version" ]] || die "no PostgreSQL server version under /usr/lib/postgresql"
    log "creating cluster $version/$CLUSTER"
    "${SUDO[@]}" pg_createcluster "$version" "$CLUSTER" --port 5432
}

wait_ready() {
    local port="$1" deadline=$((SECONDS + READY_TIMEOUT))
    until pg_isready -q -h 127.0.0.1 -p "$port"; do
        if ((SECONDS >= deadline)); then
            log "server not ready after ${READY_TIMEOUT}s"
            return 1
        fi
        sleep 0.5
    done
}

# Idempotent: re-running also resets the password/attributes, so a role
# created by hand with a different password gets fixed instead of breaking CI.
ensure_role_and_db() {
    local port="$1"
    as_postgres psql -q -X -p "$port" -d postgres -v ON_ERROR_STOP=1 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${DB_USER}') THEN
        CREATE ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}';
    ELSE
        ALTER ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}';
    END IF;
END
\$\$;
-- Tests drop their databases WITH (FORCE); that must be able to end an autovacuum worker
-- that happens to be visiting the database.
GRANT pg_signal_backend TO ${DB_USER};
-- CREATE DATABASE cannot run inside DO/transactions; \gexec runs it only if missing.
SELECT 'CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DB_NAME}')\gexec
SQL
}

password_login_works() {
    PGPASSWORD="$DB_PASSWORD" psql -X -q -h 127.0.0.1 -p "$1" -U "$DB_USER" -d "$DB_NAME" \
        -tAc 'select 1' >/dev/null 2>&1
}

# Debian's default pg_hba.conf already allows scram-sha-256 on 127.0.0.1, but
# a customised one might not; pg_hba is first-match, so prepend our rule.
ensure_tcp_password_auth() {
    local version="$1" port="$2"
    if password_login_works "$port"; then
        return
    fi
    local hba
    hba="$(as_postgres psql -X -p "$port" -d postgres -tAc 'show hba_file')"
    log "TCP password login failed; adding a scram-sha-256 rule for $DB_USER to $hba"
    "${SUDO[@]}" sed -i "1i host all ${DB_USER} 127.0.0.1/32 scram-sha-256" "$hba"
    "${SUDO[@]}" pg_ctlcluster "$version" "$CLUSTER" reload
    password_login_works "$port" || die "still cannot log in as $DB_USER over TCP"
}

# This cluster listens on loopback only, for development, CI and the benchmarks. Debian turns
# TLS on with a snakeoil certificate, and every client then encrypts to itself: in asyncpg
# that cost more CPU than the queries (bench.api). A deployment's own DSN decides TLS for a
# real server (docs/operations.md).
ensure_loopback_plaintext() {
    local port="$1"
    if [[ "$(as_postgres psql -X -p "$port" -d postgres -tAc 'show ssl')" == "on" ]]; then
        log "turning TLS off on the loopback cluster"
        as_postgres psql -X -q -p "$port" -d postgres -v ON_ERROR_STOP=1 \
            -c "ALTER SYSTEM SET ssl = off" -c "SELECT pg_reload_conf()" >/dev/null
    fi
}

cmd_start() {
    ensure_installed
    ensure_cluster
    local version port status
    read -r version port status <<<"$(cluster_info)"
    if [[ "$status" != online* ]]; then
        log "starting cluster $version/$CLUSTER on port $port"
        "${SUDO[@]}" pg_ctlcluster "$version" "$CLUSTER" start
    fi
    wait_ready "$port"
    ensure_role_and_db "$port"
    ensure_tcp_password_auth "$version" "$port"
    ensure_loopback_plaintext "$port"
    log "ready: cluster $version/$CLUSTER on 127.0.0.1:$port"
    echo "postgresql+asyncpg://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${port}/${DB_NAME}"
}

cmd_stop() {
    local info version port status
    info="$(cluster_info 2>/dev/null || true)"
    if [[ -z "$info" ]]; then
        log "no cluster"
        return 0
    fi
    read -r version port status <<<"$info"
    if [[ "$status" == online* ]]; then
        "${SUDO[@]}" pg_ctlcluster "$version" "$CLUSTER" stop
        log "stopped cluster $version/$CLUSTER"
    else
        log "not running"
    fi
}

cmd_status() {
    local info version port status
    if ! command -v pg_lsclusters >/dev/null; then
        echo "not installed"
        return 3
    fi
    info="$(cluster_info)"
    if [[ -z "$info" ]]; then
        echo "no cluster"
        return 3
    fi
    read -r version port status <<<"$info"
    echo "cluster $version/$CLUSTER port $port: $status"
    [[ "$status" == online* ]] || return 3
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 {start|stop|status}" >&2
    exit 2
    ;;
esac
