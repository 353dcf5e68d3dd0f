# Sourced by docker/build.sh and docker/smoke_test.sh (bash, set -euo pipefail):
# picks the container engine and says which commit an image was built from.

# pick_engine: sets ENGINE to docker or podman, whichever can run containers,
# or returns 1 with the reasons in ENGINE_WHY.
# Docker first only when its daemon answers: many hosts (this project's build
# machines among them) have the docker client without an engine, and then
# every docker command fails.
pick_engine() {
  ENGINE=""
  ENGINE_WHY=""
  if command -v docker >/dev/null 2>&1; then
    if timeout 20 docker info >/dev/null 2>&1; then
      ENGINE=docker
      return 0
    fi
    ENGINE_WHY="docker: the client is there but \`docker info\` fails (no engine reachable)"
  else
    ENGINE_WHY="docker: not installed"
  fi
  if command -v podman >/dev/null 2>&1; then
    # runc and explicit ulimits: see docker/containers.conf. Only where runc
    # is installed (podman hosts with only crun keep their defaults), and a
    # CONTAINERS_CONF the caller set wins.
    if [ -z "${CONTAINERS_CONF:-}" ] &&
      { command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ]; }; then
      export CONTAINERS_CONF
      CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
    fi
    if timeout 60 podman info >/dev/null 2>&1; then
      ENGINE=podman
      return 0
    fi
    ENGINE_WHY="$ENGINE_WHY; podman: \`podman info\` fails"
  else
    ENGINE_WHY="$ENGINE_WHY; podman: not installed"
  fi
  return 1
}

# git_revision: the commit the build context holds, "-dirty" when the work
# tree has changes git would put in it (untracked files too); "unknown"
# outside git. Images are labelled with it (org.opencontainers.image.revision).
git_revision() {
  local rev
  rev="$(git rev-parse HEAD 2>/dev/null)" || { echo unknown; return; }
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then rev="$rev-dirty"; fi
  echo "$rev"
}

# image_label IMAGE KEY: the label's value, empty if the image or label is absent.
image_label() {
  "$ENGINE" image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# image_size_mb IMAGE: the image's size as the engine reports it, in MB (10^6).
image_size_mb() {
  local bytes
  bytes="$("$ENGINE" image inspect --format '{{.Size}}' "$1")"
  echo $(((bytes + 500000) / 1000000))
}
