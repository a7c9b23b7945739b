#!/usr/bin/env bash
# Build the PostgreSQL image of deploy/podman/postgres from Debian's packages, with no image
# registry: the stand-in for postgres:16 in docker-compose.yml (VCREDIT_POSTGRES_IMAGE).
#
#   deploy/podman/postgres/build.sh     # prints the image's reference
#
# The image is localhost/vcredit-postgres:<digest of the base image's reference, the
# Containerfile, the entrypoint and this script>; when podman already has it, nothing is
# built again. Its base comes from deploy/podman/base.sh, cached the same way.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PODMAN_DIR="$(dirname "$SCRIPT_DIR")"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PODMAN_DIR/containers.conf}"
# Debian bookworm's PostgreSQL; the entrypoint refuses a data directory of another major.
PG_MAJOR=15
INPUTS=("${BASH_SOURCE[0]}" "$SCRIPT_DIR/Containerfile" "$SCRIPT_DIR/docker-entrypoint.sh")

started=$SECONDS
base=$("$PODMAN_DIR/base.sh" postgres "postgresql-$PG_MAJOR")
tag=$( (echo "$base $PG_MAJOR"; cat "${INPUTS[@]}") | sha256sum | cut -c1-12)
image="localhost/vcredit-postgres:$tag"

if podman image exists "$image"; then
    echo "$image"
    exit 0
fi

# The context holds only what the Containerfile copies, not the repository.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$SCRIPT_DIR/Containerfile" "$context/"
install -m 0755 "$SCRIPT_DIR/docker-entrypoint.sh" "$context/"
# --squash-all: one layer, so the files the Containerfile deletes from the base are gone
# from the image rather than hidden under a layer. No step needs the network.
podman build --squash-all --network=none \
    --build-arg BASE="$base" --build-arg PG_MAJOR="$PG_MAJOR" \
    --tag "$image" "$context" >&2
echo "build.sh: made $image in $((SECONDS - started)) s" >&2
echo "$image"
