#!/usr/bin/env bash
# The Kubernetes manifests (deploy/k8s) run by `podman kube play`, without a cluster: what
# `kubectl apply -k deploy/k8s` would run, on one machine, on the images of images.sh.
#
#   deploy/podman/kube.sh up      # Kafka, PostgreSQL, the migrate Job's pod, the five Deployments
#   deploy/podman/kube.sh ps      # the pods and containers, and their state
#   deploy/podman/kube.sh down    # remove every pod, container, volume, secret and the network
#
# Environment:
#   VCREDIT_KUBE_PREFIX      names everything this script makes (default vckube): the network
#                            is PREFIX, the rest PREFIX-*; `down` removes exactly those
#   VCREDIT_BOOTSTRAP_TOKEN  the all-roles token (default: a random one, printed by `up`)
#   VCREDIT_KUBE_TIMEOUT     seconds to wait for each step (default 300)
#
# Nothing is published on the host: every container is on the PREFIX network only. Reach a
# service from a container there: podman run --rm --network vckube --entrypoint python
# localhost/vcredit:local -c "import urllib.request; print(urllib.request.urlopen('http://registry:8001/readyz').read())"
#
# What `up` does, in the order of docs/operations.md's Kubernetes section:
#   1. Kafka and PostgreSQL (not in deploy/k8s: "point vcredit-config and vcredit-secrets at
#      yours") as containers with the network aliases kafka and postgres, which config.env
#      and the database URLs name; it waits for their health checks.
#   2. The Secrets of secret.example.yaml, with values made for this run (a PostgreSQL
#      password, a bootstrap token, a JWT signing key and a PII key from the image's own
#      `vcredit keys signing-key` and `vcredit pii new-key`), as podman secrets.
#   3. deploy/k8s rendered by kube_manifests.py (the few changes podman 4.3 needs are listed
#      and explained there), the ConfigMaps given to each `kube play --configmap`.
#   4. The vcredit-migrate Job's pod (podman plays no Job), waited for until it exits 0.
#   5. The five Deployments, each pod with its Service's name as a network alias (podman
#      plays no Service; aardvark-dns answers an alias with every pod that has it, as a
#      headless Service would), then each container's /readyz (its readinessProbe) until it
#      answers 200: podman 4.3 runs no probes (below).
#
# podman 4.3 and the manifests: it turns a livenessProbe into a health check that nothing
# runs without systemd, and a broken one at that (`curl -f http://localhost:0/healthz`: the
# named port is read as 0, and the image has no curl); readiness and startup probes, preStop,
# terminationGracePeriodSeconds (stops wait 10 s; `down` gives 45), runAsNonRoot (not
# checked, though runAsUser is applied), fsGroup, seccompProfile (podman's default profile
# applies anyway), requests and emptyDir sizeLimit are ignored; secret defaultMode too (files
# are 0644). readOnlyRootFilesystem, runAsUser/runAsGroup, capabilities drop ALL,
# allowPrivilegeEscalation: false (no-new-privileges), memory and CPU limits, initContainers,
# replicas (a pod each: PREFIX-registry-pod-0 and -1) are applied as Kubernetes would.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$SCRIPT_DIR/containers.conf}"
PREFIX="${VCREDIT_KUBE_PREFIX:-vckube}"
TIMEOUT="${VCREDIT_KUBE_TIMEOUT:-300}"
export VCREDIT_KUBE_PREFIX="$PREFIX"

log() { echo "kube.sh: $*" >&2; }

# podman 4.3 logs an error for every health check it cannot hand to systemd; kube.sh runs
# the checks itself, so those lines are noise. Anything else podman says is kept. Through a
# file, not a pipe: conmon keeps podman's stderr open for the container's life, and a pipe
# held open would keep a caller that reads kube.sh's output (the tests) waiting for ever.
quiet() {
    local err rc=0
    err=$(mktemp)
    "$@" 2>"$err" || rc=$?
    grep -v 'unable to get systemd connection' "$err" >&2 || true
    rm -f "$err"
    return "$rc"
}

pods() { podman pod ps --filter "name=^$PREFIX-" --format '{{.Name}}'; }

logs() {
    local name
    for name in $(podman ps -a --filter "name=^$PREFIX-" --format '{{.Names}}'); do
        [[ $name == *-infra ]] && continue
        echo "--- $name: $(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$name")" >&2
        podman logs --tail 30 "$name" >&2 || true
    done
}

# Runs "$@" until it succeeds, or fails with the containers' logs after TIMEOUT seconds.
wait_for() {
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            log "$what: not within ${TIMEOUT}s"
            logs
            return 1
        fi
        sleep 1
    done
}

start_infra() {
    local images=$1 kafka postgres
    kafka=$(sed -n 's/^kafka=//p' <<<"$images")
    postgres=$(sed -n 's/^postgres=//p' <<<"$images")
    # docker-compose.yml's Kafka without its HOST listener: nothing here is reached from the host.
    quiet podman run -d --name "$PREFIX-kafka" --network "$PREFIX" --network-alias kafka \
        --read-only --tmpfs /tmp --volume "$PREFIX-kafka-data:/var/lib/kafka/data" \
        -e CLUSTER_ID="$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')" \
        -e KAFKA_NODE_ID=1 -e KAFKA_PROCESS_ROLES=broker,controller \
        -e KAFKA_CONTROLLER_QUORUM_VOTERS=1@kafka:9093 -e KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER \
        -e KAFKA_LISTENERS=PLAINTEXT://:9092,CONTROLLER://:9093 \
        -e KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://kafka:9092 \
        -e KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT \
        -e KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT -e KAFKA_LOG_DIRS=/var/lib/kafka/data \
        -e KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 -e KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1 \
        -e KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1 -e KAFKA_DEFAULT_REPLICATION_FACTOR=1 \
        -e KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0 \
        "$kafka" >/dev/null
    quiet podman run -d --name "$PREFIX-postgres" --network "$PREFIX" --network-alias postgres \
        --read-only --tmpfs /run/postgresql --volume "$PREFIX-postgres-data:/var/lib/postgresql/data" \
        --volume "$REPO_ROOT/deploy/postgres/init.sql:/docker-entrypoint-initdb.d/10-vcredit.sql:ro" \
        -e POSTGRES_USER=vcredit -e POSTGRES_PASSWORD="$VCREDIT_KUBE_POSTGRES_PASSWORD" -e POSTGRES_DB=vcredit \
        "$postgres" >/dev/null
    # docker-compose.yml's health checks.
    wait_for "PostgreSQL ready" podman exec "$PREFIX-postgres" pg_isready -U vcredit -d vcredit
    wait_for "Kafka ready" podman exec "$PREFIX-kafka" \
        /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092
}

make_secrets() {
    local image=$1 out=$2 keys
    VCREDIT_KUBE_POSTGRES_PASSWORD=${VCREDIT_KUBE_POSTGRES_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')}
    VCREDIT_BOOTSTRAP_TOKEN=${VCREDIT_BOOTSTRAP_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')}
    keys=$(quiet podman run --rm --network none --entrypoint sh "$image" -c 'vcredit keys signing-key && vcredit pii new-key')
    VCREDIT_KUBE_SIGNING_KEY=$(sed -n 's/^private ([^)]*): //p' <<<"$keys")
    VCREDIT_KUBE_PII_KEY=$(tail -n 1 <<<"$keys")
    [[ -n $VCREDIT_KUBE_SIGNING_KEY && -n $VCREDIT_KUBE_PII_KEY ]] || { log "no keys from the image: $keys"; return 1; }
    export VCREDIT_KUBE_POSTGRES_PASSWORD VCREDIT_BOOTSTRAP_TOKEN VCREDIT_KUBE_SIGNING_KEY VCREDIT_KUBE_PII_KEY
    python3 "$SCRIPT_DIR/kube_manifests.py" secrets "$out"
    podman secret create "$PREFIX-vcredit-secrets" "$out/secrets.json" >/dev/null
    podman secret create "$PREFIX-vcredit-credentials" "$out/credentials.yaml" >/dev/null
}

play() {
    local alias=$1 file=$2 configmaps=() cm
    for cm in "$WORK"/configmap-*.yaml; do configmaps+=(--configmap "$cm"); done
    # kube play reports what failed to start on stdout, with the pods it made. It runs a pod's
    # init containers to their end before it returns, so one that never exits (a
    # wait-for-migrations whose check can never pass) would hold it, and this script, for
    # ever: it gets TIMEOUT seconds, as every other step, and then the containers' logs say why.
    local report rc=0
    report=$(quiet timeout "$TIMEOUT" podman kube play --network "$PREFIX:alias=$alias" "${configmaps[@]}" "$file") || rc=$?
    if ((rc == 124)); then
        log "podman kube play $(basename "$file"): not done within ${TIMEOUT}s (an init container still running?)"
        logs
        return 1
    elif ((rc != 0)); then
        log "podman kube play $(basename "$file") failed: $report"
        logs
        return 1
    fi
}

ready() {
    local container=$1
    [[ $(podman inspect --format '{{.State.Status}}' "$container") == running ]] || return 1
    # The readinessProbe's GET /readyz, by the image's health-check script (no curl in it).
    podman exec "$container" python /app/healthcheck.py /readyz
}

up() {
    local started=$SECONDS images image step
    command -v podman >/dev/null || { log "podman is missing (apt-get install podman runc)"; exit 1; }
    if podman network exists "$PREFIX"; then
        log "network $PREFIX exists: run '$0 down' first"
        exit 1
    fi
    images=$("$SCRIPT_DIR/images.sh")
    image=$(sed -n 's/^vcredit=//p' <<<"$images")
    export VCREDIT_IMAGE="$image"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    python3 "$SCRIPT_DIR/kube_manifests.py" manifests "$WORK"

    step=$SECONDS
    podman network create "$PREFIX" >/dev/null
    make_secrets "$image" "$WORK"
    start_infra "$images"
    log "Kafka and PostgreSQL ready in $((SECONDS - step)) s"

    step=$SECONDS
    play vcredit-migrate "$WORK/migrate.yaml"
    local migrate="$PREFIX-vcredit-migrate-migrate" code
    code=$(podman wait "$migrate")
    if [[ $code != 0 ]]; then
        log "the migrate Job's pod exited with $code"
        logs
        return 1
    fi
    log "migrate (topics, then every database) exited 0 in $((SECONDS - step)) s"

    step=$SECONDS
    local pod alias container replicas i containers=()
    while read -r pod alias container replicas; do
        play "$alias" "$WORK/deployment-$alias.yaml"
        for ((i = 0; i < replicas; i++)); do containers+=("$pod-pod-$i-$container"); done
    done <"$WORK/workloads"
    for container in "${containers[@]}"; do
        wait_for "$container /readyz" ready "$container"
    done
    log "${#containers[@]} pods ready in $((SECONDS - step)) s (${containers[*]})"
    log "up in $((SECONDS - started)) s; network $PREFIX, bootstrap token on stdout"
    echo "token=$VCREDIT_BOOTSTRAP_TOKEN"
}

down() {
    local pod name
    # terminationGracePeriodSeconds (45), which podman 4.3 does not take from the manifests.
    # `pod rm` may log that a workload's emptyDir volume is still in use: the replicas share
    # it (kube_manifests.py), and the last pod's removal takes it.
    mapfile -t pod < <(pods)
    if ((${#pod[@]})); then
        quiet podman pod stop --time 45 "${pod[@]}" >/dev/null
        quiet podman pod rm --force "${pod[@]}" >/dev/null
    fi
    for name in $(podman ps -a --filter "name=^$PREFIX-" --format '{{.Names}}'); do
        quiet podman rm --force --volumes --time 20 "$name" >/dev/null
    done
    for name in $(podman volume ls --filter "name=^$PREFIX-" --format '{{.Name}}'); do
        podman volume rm --force "$name" >/dev/null
    done
    for name in $(podman secret ls --format '{{.Name}}'); do
        [[ $name == "$PREFIX"-* ]] && podman secret rm "$name" >/dev/null
    done
    if podman network exists "$PREFIX"; then podman network rm "$PREFIX" >/dev/null; fi
    log "removed every pod, container, volume and secret named $PREFIX-*, and the network $PREFIX"
}

case "${1:-}" in
    up) up ;;
    ps) podman ps -a --filter "name=^$PREFIX-" --format '{{.Names}}\t{{.Status}}' ;;
    down) down ;;
    *) echo "usage: $0 up|ps|down" >&2; exit 2 ;;
esac
