#!/usr/bin/env bash
# Build the Kafka image without any image registry:
#
#   deploy/podman/kafka/build.sh      # prints the image's reference
#
# The jars come from Maven Central (deploy/local/kafka.sh fetch, the pom in
# deploy/local), the base from Debian's packages (deploy/podman/base.sh). The image is
# localhost/vcredit-kafka:<digest of the base and of every file of the build context>;
# when podman already has it, nothing is built again. Progress goes to stderr.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$SCRIPT_DIR/../containers.conf}"
LIBS_DIR="$REPO_ROOT/.cache/kafka/libs"

log() { echo "kafka/build.sh: $*" >&2; }

started=$SECONDS
"$REPO_ROOT/deploy/local/kafka.sh" fetch
# tini: PID 1 (see the Containerfile); the JRE pulls in everything else the scripts use.
base=$("$SCRIPT_DIR/../base.sh" kafka openjdk-17-jre-headless tini)

# The context is only what the image holds, not the repository.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp -r "$SCRIPT_DIR/Containerfile" "$SCRIPT_DIR/bin" "$SCRIPT_DIR/config" "$context/"
mkdir "$context/libs"
cp "$LIBS_DIR"/*.jar "$context/libs/"

# Names and contents of every file, and the base (whose tag is its own digest).
digest=$(
    cd "$context"
    echo "$base"
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    # Modes too: a script that lost its x bit is a different image.
    find . -type f -printf '%m %p\n' | LC_ALL=C sort
)
image="localhost/vcredit-kafka:$(sha256sum <<<"$digest" | cut -c1-12)"

if podman image exists "$image"; then
    log "$image is up to date ($((SECONDS - started)) s)"
    echo "$image"
    exit 0
fi
# --network=none: nothing is downloaded while building, everything is in the context.
podman build --quiet --network=none --build-arg "BASE=$base" \
    --label "org.opencontainers.image.source=deploy/podman/kafka" \
    -t "$image" -f "$context/Containerfile" "$context" >/dev/null
log "built $image in $((SECONDS - started)) s"
echo "$image"
