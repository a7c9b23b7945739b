#!/usr/bin/env bash
# Check the image of build.sh the way docker-compose.yml uses it, on a read-only root
# filesystem with the mounts compose declares (the data volume, deploy/postgres/init.sql,
# a tmpfs on /run/postgresql):
#
#   deploy/podman/postgres/check.sh [HOST_PORT]     # default 55433; needs psql on the host
#
# First start: initialised, the vcredit_<service> databases of init.sql exist, a TCP client
# gets in with the password only, pg_isready works in the container. Stop: a clean shutdown,
# exit 0. Second start on the same volume: the data is kept and init.sql is not run again.
# Removes the container and volume it made (vcredit-pgcheck-<pid>).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/../../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$SCRIPT_DIR/../containers.conf}"
PORT=${1:-55433}
NAME="vcredit-pgcheck-$$"
READY_TIMEOUT=60

log() { echo "check.sh: $*" >&2; }
fail() {
    log "FAIL: $*"
    podman logs "$NAME" >&2 || true
    exit 1
}

image=$("$SCRIPT_DIR/build.sh")
cleanup() {
    podman rm --force --ignore "$NAME" >/dev/null || true
    podman volume rm --force "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Both ways a read-only root looks: podman's (its own tmpfs on /run, /tmp and /var/tmp, as
# podman-compose gets for read_only: true) and docker's (only the tmpfs declared).
MODES=("--read-only" "--read-only --read-only-tmpfs=false")

run() {
    local mode
    read -r -a mode <<<"$1"
    podman run --detach --name "$NAME" "${mode[@]}" --tmpfs /run/postgresql \
        --env POSTGRES_USER=vcredit --env POSTGRES_PASSWORD=vcredit --env POSTGRES_DB=vcredit \
        --publish "127.0.0.1:$PORT:5432" \
        --volume "$NAME:/var/lib/postgresql/data" \
        --volume "$REPO_DIR/deploy/postgres/init.sql:/docker-entrypoint-initdb.d/10-vcredit.sql:ro" \
        "$image" >/dev/null
}

# compose's healthcheck, polled until it passes or the container exits.
wait_ready() {
    local started=$SECONDS
    until podman exec "$NAME" pg_isready --quiet -U vcredit -d vcredit; do
        [[ $(podman inspect --format '{{.State.Running}}' "$NAME") == true ]] || fail "the container exited"
        ((SECONDS - started < READY_TIMEOUT)) || fail "not ready after $READY_TIMEOUT s"
        sleep 0.2
    done
    log "ready after $((SECONDS - started)) s"
}

sql() {
    local password=$1 db=$2
    shift 2
    PGPASSWORD=$password PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -tA \
        -h 127.0.0.1 -p "$PORT" -U vcredit -d "$db" "$@"
}

stop() {
    podman stop "$NAME" >/dev/null
    [[ $(podman inspect --format '{{.State.ExitCode}}' "$NAME") == 0 ]] || fail "exit code not 0 after stop"
    podman logs "$NAME" 2>&1 | tail -n 1 | grep -q 'database system is shut down' || fail "no clean shutdown"
    log "stopped cleanly"
}

check() {
    local databases runs
    log "--- podman run $1 --tmpfs /run/postgresql"
    cleanup
    podman volume create "$NAME" >/dev/null
    run "$1"
    wait_ready
    # The healthcheck passes only once the init scripts are done: the databases are there.
    databases=$(sql vcredit vcredit -c "SELECT count(*) FROM pg_database WHERE datname IN
        ('vcredit_registry', 'vcredit_scoring', 'vcredit_loans', 'vcredit_risk', 'vcredit_notify')")
    [[ $databases == 5 ]] || fail "$databases of the 5 vcredit_<service> databases exist"
    if sql wrong-password vcredit -c 'SELECT 1' 2>/dev/null; then
        fail "a TCP client got in with a wrong password"
    fi
    sql vcredit vcredit_loans -c "CREATE TABLE pgcheck (note text); INSERT INTO pgcheck VALUES ('kept')"
    log "initialised: 5 service databases, password required over TCP"
    stop

    podman start "$NAME" >/dev/null
    wait_ready
    [[ $(sql vcredit vcredit_loans -c 'SELECT note FROM pgcheck') == kept ]] || fail "data lost over a restart"
    runs=$(podman logs "$NAME" 2>&1 | grep -c 'running /docker-entrypoint-initdb.d/10-vcredit.sql' || true)
    [[ $runs == 1 ]] || fail "init.sql ran $runs times"
    log "restarted: data kept, init.sql not run again"
    stop
}

for mode in "${MODES[@]}"; do
    check "$mode"
done
log "OK ($image)"
