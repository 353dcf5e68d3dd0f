#!/usr/bin/env bash
# Builds the attnserve image (docker/Dockerfile) with docker or podman and
# prints its size.
# Usage: docker/build.sh [--tag T]        (default: attnserve:latest)
#
# The image is labelled with the git commit it was built from
# (org.opencontainers.image.revision; docker/smoke_test.sh reuses an image
# only if that is HEAD). Where debian:bookworm-slim cannot be pulled (no
# registry access) and the host is Debian 12, the base is made from the host's
# own Debian archive with debootstrap (needs root) and kept as
# localhost/debian:bookworm for the next build; `ENGINE rmi` it to remake it.
set -euo pipefail
cd "$(dirname "$0")/.."
source docker/engine.sh

TAG="attnserve:latest"
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
    --tag=*) TAG="${1#--tag=}"; shift ;;
    -h | --help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--tag T]" >&2; exit 2 ;;
  esac
done

if ! pick_engine; then
  echo "build.sh: no container engine that works: $ENGINE_WHY" >&2
  exit 1
fi

LOCAL_BASE="localhost/debian:bookworm"
# Podman does not resolve short names without a search registry configured
# (Debian's registries.conf has none), so it gets the full name.
UPSTREAM_BASE="debian:bookworm-slim"
if [ "$ENGINE" = podman ]; then UPSTREAM_BASE="docker.io/library/debian:bookworm-slim"; fi

image_exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

# make_local_base: a Debian 12 minbase from the Debian archive this host uses,
# trimmed as debian:bookworm-slim is (no docs, man pages, locales, apt lists),
# imported as $LOCAL_BASE.
make_local_base() {
  if ! grep -qx 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    echo "build.sh: cannot pull $UPSTREAM_BASE, and this host is not Debian 12 (bookworm), whose archive could make it" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v debootstrap >/dev/null; then
    echo "build.sh: cannot pull $UPSTREAM_BASE; making it locally needs root and debootstrap (apt-get install debootstrap)" >&2
    exit 1
  fi
  local mirror
  # apt's own view of the sources (one-line and deb822 formats alike).
  mirror="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk '$2 == "bookworm" { print $1; exit }')"
  if [ -z "$mirror" ]; then
    echo "build.sh: no bookworm source in this host's apt configuration" >&2
    exit 1
  fi
  echo "build.sh: cannot pull $UPSTREAM_BASE: making $LOCAL_BASE from $mirror with debootstrap (once; reused after)"
  ROOTFS="$(mktemp -d /var/tmp/attnserve-base.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
  if ! debootstrap --variant=minbase bookworm "$ROOTFS" "$mirror" >"$ROOTFS.log" 2>&1; then
    tail -n 20 "$ROOTFS.log" >&2
    echo "build.sh: debootstrap failed (log above)" >&2
    exit 1
  fi
  rm -f "$ROOTFS.log"
  # The host's apt sources (those naming this mirror: the archive, updates and
  # security) instead of debootstrap's bare "bookworm main", so that the image
  # builds install the same package versions as the host.
  local copied=0 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [ -f "$f" ] && grep -qF "${mirror%/}" "$f"; then
      cp "$f" "$ROOTFS/etc/apt/sources.list.d/"
      copied=1
    fi
  done
  if [ "$copied" = 1 ]; then rm -f "$ROOTFS/etc/apt/sources.list"; fi
  # What debian:bookworm-slim leaves out, now and for later installs (the
  # same dpkg path filters); without this the base is ~200 MB, not ~80.
  cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$ROOTFS"/usr/share/{man,groff,info,lintian}/*
  find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
  # The engine provides these at run time; the host's copies don't belong in an image.
  : >"$ROOTFS/etc/resolv.conf"
  : >"$ROOTFS/etc/hostname"
  tar -C "$ROOTFS" -c . | "$ENGINE" import --change 'CMD ["bash"]' - "$LOCAL_BASE" >/dev/null
  rm -rf "$ROOTFS"
  trap - EXIT
}

# The base, cheapest first: already here, made here before, pulled, made now.
if image_exists "$UPSTREAM_BASE"; then
  BASE="$UPSTREAM_BASE"
elif image_exists "$LOCAL_BASE"; then
  BASE="$LOCAL_BASE"
  echo "build.sh: base $LOCAL_BASE (made earlier from this host's Debian archive; $UPSTREAM_BASE is not here)"
elif timeout 60 "$ENGINE" pull -q "$UPSTREAM_BASE" >/dev/null 2>&1; then
  BASE="$UPSTREAM_BASE"
else
  make_local_base
  BASE="$LOCAL_BASE"
fi

REVISION="$(git_revision)"
VERSION="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
SOURCE="$(git remote get-url origin 2>/dev/null || true)"
# ATTNSERVE_IMAGE_UNIT_TESTS=0: the build stage skips its unit tests (CI's
# short form; see the Dockerfile).
build_args=(--build-arg "BASE_IMAGE=$BASE"
            --build-arg "UNIT_TESTS=${ATTNSERVE_IMAGE_UNIT_TESTS:-1}")
# As build args for the Dockerfile's LABEL, and as --label too, because
# buildah 1.28 keeps a cached LABEL step's old values when only the args
# changed (see the Dockerfile).
for kv in "VERSION=$VERSION" "REVISION=$REVISION" "SOURCE=$SOURCE"; do
  key="${kv%%=*}"
  build_args+=(--build-arg "$kv" --label "org.opencontainers.image.${key,,}=${kv#*=}")
done
# Podman builds on the host network: apt-get needs nothing more, and it does
# not depend on podman's bridge (CNI/netavark) setup, which minimal installs
# may lack. Docker's default build network works everywhere, and
# --network=host can need an extra entitlement with BuildKit builders.
if [ "$ENGINE" = podman ]; then build_args+=(--network=host); fi

echo "build.sh: $ENGINE build -t $TAG (base $BASE, revision $REVISION)"
start=$SECONDS
"$ENGINE" build -f docker/Dockerfile "${build_args[@]}" -t "$TAG" .
echo "build.sh: built $TAG in $((SECONDS - start)) s; image size $(image_size_mb "$TAG") MB"
