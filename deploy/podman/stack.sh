#!/usr/bin/env bash
# The whole system as containers with podman, without a Docker engine or an image registry:
# docker-compose.yml run by podman-compose on the images deploy/podman/images.sh makes.
#
#   deploy/podman/stack.sh up       # build the images (cached), start, wait until all are healthy
#   deploy/podman/stack.sh ps       # the containers and their state
#   deploy/podman/stack.sh down     # stop and remove the containers (the volumes stay)
#   deploy/podman/stack.sh down -v  # ... and the volumes: every database, topic and key
#
# Environment:
#   VCREDIT_BOOTSTRAP_TOKEN    the all-roles token (docker-compose.yml's default is no secret)
#   VCREDIT_COMPOSE_PROJECT    compose project name (default vcredit)
#   VCREDIT_COMPOSE_OVERRIDE   an extra compose file merged over docker-compose.yml
#   VCREDIT_STACK_TIMEOUT      seconds to wait for health (default 300)
#
# Debian 12's podman (4.3) runs health checks only when asked (no systemd timers), and
# podman-compose does not wait for `condition: service_healthy` there: `up` does what
# docker-compose.yml's depends_on says, one step at a time. It starts Kafka and PostgreSQL
# and runs their compose health checks until they pass, then migrate, and once migrate has
# exited 0 the five services, whose health checks it runs until all pass. It fails, with
# the containers' logs, at the first step that does not succeed.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$SCRIPT_DIR/containers.conf}"
PROJECT="${VCREDIT_COMPOSE_PROJECT:-vcredit}"
TIMEOUT="${VCREDIT_STACK_TIMEOUT:-300}"
SERVICES=(registry scoring loans risk notify)

log() { echo "stack.sh: $*" >&2; }

compose() {
    local files=(-f "$REPO_ROOT/docker-compose.yml")
    [[ -n "${VCREDIT_COMPOSE_OVERRIDE:-}" ]] && files+=(-f "$VCREDIT_COMPOSE_OVERRIDE")
    podman-compose -p "$PROJECT" "${files[@]}" "$@"
}

container() {
    podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1" --format '{{.Names}}'
}

logs() {
    for service in kafka postgres migrate "${SERVICES[@]}"; do
        local name
        name=$(container "$service")
        [[ -n "$name" ]] || continue
        echo "--- $service ($name): $(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$name")" >&2
        podman logs --tail 30 "$name" >&2 || true
    done
}

# Run each container's compose health check until it passes, as podman's timer would.
wait_healthy() {
    local deadline=$((SECONDS + TIMEOUT)) pending=("$@") left name
    while ((${#pending[@]})); do
        left=()
        for service in "${pending[@]}"; do
            name=$(container "$service")
            if [[ -z "$name" || $(podman inspect --format '{{.State.Status}}' "$name") == exited ]]; then
                log "$service is not running"
                logs
                return 1
            fi
            podman healthcheck run "$name" >/dev/null 2>&1 || left+=("$service")
        done
        pending=("${left[@]+"${left[@]}"}")
        if ((${#pending[@]})); then
            if ((SECONDS > deadline)); then
                log "not healthy within ${TIMEOUT}s: ${pending[*]}"
                logs
                return 1
            fi
            sleep 1
        fi
    done
}

up() {
    local started=$SECONDS images
    command -v podman-compose >/dev/null || { log "podman-compose is missing (pip install podman-compose)"; exit 1; }
    images=$("$SCRIPT_DIR/images.sh")
    VCREDIT_KAFKA_IMAGE=$(sed -n 's/^kafka=//p' <<<"$images")
    VCREDIT_POSTGRES_IMAGE=$(sed -n 's/^postgres=//p' <<<"$images")
    export VCREDIT_KAFKA_IMAGE VCREDIT_POSTGRES_IMAGE
    compose up -d kafka postgres >&2
    wait_healthy kafka postgres
    # One step at a time, each with --no-deps: podman 4.3 cannot start a container whose
    # --requires chain is longer than one link (services -> migrate -> kafka: "not found in
    # input list"), and a killed service started again must not rerun migrate with it.
    compose up -d --no-deps migrate >&2
    local migrate
    migrate=$(podman wait "$(container migrate)")
    if [[ "$migrate" != 0 ]]; then
        log "migrate exited with $migrate"
        logs
        return 1
    fi
    compose up -d --no-deps "${SERVICES[@]}" >&2
    wait_healthy "${SERVICES[@]}"
    log "up in $((SECONDS - started)) s: Kafka, PostgreSQL, migrate (exited 0) and the five services healthy"
}

case "${1:-}" in
    up) up ;;
    ps) podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}\t{{.Status}}' ;;
    down) shift; compose down --timeout 40 "$@" >&2 ;;
    *) echo "usage: $0 up|ps|down [-v]" >&2; exit 2 ;;
esac
