#!/usr/bin/env bash
# Build every image the stack runs, with podman and without any image registry:
#   vcredit   deploy/Dockerfile on Python bases made from Debian's packages (base.sh)
#   kafka     KRaft broker from Maven Central's jars on Debian's Java runtime (kafka/build.sh)
#   postgres  Debian's PostgreSQL (postgres/build.sh)
#
#   deploy/podman/images.sh [vcredit|kafka|postgres ...]     # default: all three
#
# The three are built at the same time. Prints NAME=REFERENCE lines on stdout (for docker-compose.yml: VCREDIT_KAFKA_IMAGE and
# VCREDIT_POSTGRES_IMAGE; the services' image is vcredit:local), and each image's size
# and build time on stderr. Bases and the Kafka/PostgreSQL images are kept by a digest of
# their inputs, and podman's layer cache keeps the vcredit image's dependency layer, so a
# second run on the same machine rebuilds only what changed.
#
# Behind a TLS-intercepting proxy (PIP_CERT, SSL_CERT_FILE or pip's global.cert names its
# CA bundle), the bundle is mounted into the build for pip; it is in no layer of the image.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$SCRIPT_DIR/containers.conf}"
VCREDIT_IMAGE="${VCREDIT_IMAGE:-localhost/vcredit:local}"

log() { echo "images.sh: $*" >&2; }

size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

build_vcredit() {
    local build_base runtime_base ca started=$SECONDS bases first second failed=0
    bases=$(mktemp -d)
    "$SCRIPT_DIR/base.sh" python-build python3 python3-venv python-is-python3 ca-certificates >"$bases/build" &
    first=$!
    "$SCRIPT_DIR/base.sh" python python3 python-is-python3 ca-certificates >"$bases/runtime" &
    second=$!
    wait "$first" || failed=1
    wait "$second" || failed=1
    if ((failed)); then
        rm -rf "$bases"
        log "making the Python bases failed"
        return 1
    fi
    build_base=$(<"$bases/build")
    runtime_base=$(<"$bases/runtime")
    rm -rf "$bases"
    local args=(
        --format docker  # HEALTHCHECK is a Docker-format field; OCI images drop it
        --network host
        --ignorefile "$REPO_ROOT/deploy/Dockerfile.dockerignore"
        --file "$REPO_ROOT/deploy/Dockerfile"
        --build-arg "PYTHON_IMAGE=$build_base"
        --build-arg "RUNTIME_IMAGE=$runtime_base"
        --tag "$VCREDIT_IMAGE"
    )
    ca="${PIP_CERT:-${SSL_CERT_FILE:-}}"
    if [[ -z "$ca" ]] && command -v python3 >/dev/null; then
        ca=$(python3 -m pip config list 2>/dev/null | sed -n "s/^global.cert='\(.*\)'$/\1/p")
    fi
    if [[ -n "$ca" && -f "$ca" ]]; then
        args+=(--volume "$ca:/run/build-ca.crt:ro" --build-arg PIP_CERT=/run/build-ca.crt)
    fi
    # pip's and useradd's chatter only matters when the build fails.
    local build_log
    build_log=$(mktemp)
    if ! podman build "${args[@]}" "$REPO_ROOT" >"$build_log" 2>&1; then
        tail -n 60 "$build_log" >&2
        rm -f "$build_log"
        log "building $VCREDIT_IMAGE failed"
        return 1
    fi
    rm -f "$build_log"
    log "vcredit   $VCREDIT_IMAGE  $(size "$VCREDIT_IMAGE"), built in $((SECONDS - started)) s"
    echo "vcredit=$VCREDIT_IMAGE"
}

build_other() {
    local name=$1 ref started=$SECONDS
    ref=$("$SCRIPT_DIR/$name/build.sh")
    log "$name  $ref  $(size "$ref"), built in $((SECONDS - started)) s"
    echo "$name=$ref"
}

command -v podman >/dev/null || { log "podman is missing (apt-get install podman runc mmdebstrap)"; exit 1; }
[[ $# -gt 0 ]] || set -- vcredit kafka postgres
for name in "$@"; do
    case "$name" in
        vcredit | kafka | postgres) ;;
        *) log "unknown image $name"; exit 2 ;;
    esac
done
# All at once: making a base is mostly waiting for Debian's mirror and unpacking, and a
# clean machine makes four (about 35 s each on two cores, one after another).
outputs=$(mktemp -d)
trap 'rm -rf "$outputs"' EXIT
declare -A jobs
for name in "$@"; do
    if [[ $name == vcredit ]]; then
        build_vcredit >"$outputs/$name" &
    else
        build_other "$name" >"$outputs/$name" &
    fi
    jobs[$name]=$!
done
failed=0
for name in "$@"; do
    wait "${jobs[$name]}" || { log "$name failed"; failed=1; }
    cat "$outputs/$name"
done
exit "$failed"
