#!/usr/bin/env bash
# Make a Debian base image from Debian's packages, offline from any image registry:
# mmdebstrap writes a minimal bookworm root filesystem with the given packages, and
# `podman import` turns it into an image.
#
#   deploy/podman/base.sh NAME PACKAGE...     # prints the image's reference
#
# The image is localhost/vcredit-base-NAME:<digest of the suite, the packages and this
# script>; when podman already has it (the machine kept it from an earlier run), nothing
# is made again. VCREDIT_DEBIAN_MIRROR overrides mmdebstrap's default mirror.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$SCRIPT_DIR/containers.conf}"
SUITE=bookworm

[[ $# -ge 2 ]] || { echo "usage: $0 NAME PACKAGE..." >&2; exit 2; }
name=$1
shift
packages=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
digest=$( (echo "$SUITE $packages"; cat "${BASH_SOURCE[0]}") | sha256sum | cut -c1-12)
image="localhost/vcredit-base-$name:$digest"

if podman image exists "$image"; then
    echo "$image"
    exit 0
fi
for tool in mmdebstrap podman; do
    command -v "$tool" >/dev/null || { echo "base.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$SECONDS
# minbase: essential packages and apt only. Documentation and apt's lists are dropped: the
# images never install anything after they are made. With the manual pages dropped,
# man1 must still exist: a package that registers its manual page as an alternative
# (openjdk-17-jre-headless does, for java.1.gz) fails to configure without it.
# The hooks' "$1" (the new root) is for mmdebstrap's shell to expand, hence single quotes.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=minbase --include="$packages" \
    --essential-hook='mkdir -p "$1"/usr/share/man/man1' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$SUITE" "$work/root.tar" ${VCREDIT_DEBIAN_MIRROR:+"$VCREDIT_DEBIAN_MIRROR"} >&2
podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$work/root.tar" "$image" >/dev/null
echo "base.sh: made $image in $((SECONDS - started)) s ($packages)" >&2
echo "$image"
