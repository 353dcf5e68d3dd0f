#!/usr/bin/env bash
# Smoke test of the attnserve image in a real container engine (docker, or
# podman where docker has no engine). One line per step:
#   1 the image: reused if built from git HEAD, else docker/build.sh builds it
#   2 start it as Kubernetes would (read-only root, no capabilities, 1 GiB),
#     its port published on a free 127.0.0.1 port
#   3 wait for grpc.health.v1 SERVING; prints the cold-start time
#   4 attnctl info and encode "hello world" --attention from the host
#   5 serve a second model, mounted read-only from the host
#   6 the read-only root and the memory limit are in effect
#   7 the server does not run as root
#   8 stop (SIGTERM): exit code 0 within the grace period
# Where neither docker nor podman can run containers it says why and exits 0
# (scripts/test.sh runs it everywhere).
# Usage: docker/smoke_test.sh [--tag T]   (default attnserve:latest)
# Env: ATTNCTL, MAKE_DEMO_MODEL (host binaries; default build/bin/..., else
# the image's own copies are run in a container).
set -euo pipefail
cd "$(dirname "$0")/.."
source docker/engine.sh

TAG="attnserve:latest"
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
    --tag=*) TAG="${1#--tag=}"; shift ;;
    *) echo "usage: $0 [--tag T]" >&2; exit 2 ;;
  esac
done
BIN="${BUILD_DIR:-build}/bin"
ATTNCTL="${ATTNCTL:-$BIN/attnctl}"
MAKE_DEMO_MODEL="${MAKE_DEMO_MODEL:-$BIN/make_demo_model}"
GRACE=20  # seconds `stop` waits before SIGKILL; an idle server needs ~1

if ! pick_engine; then
  echo "smoke_test: skipped: no container engine can run containers here ($ENGINE_WHY)"
  exit 0
fi

WORK="$(mktemp -d)"
C1="attnserve-smoke-$$-a"
C2="attnserve-smoke-$$-b"
cleanup() {
  # One name per call: podman 4.3's `rm -f A B` removes nothing (and exits
  # 0) when one of them is already gone.
  local c
  for c in "$C1" "$C2"; do
    timeout 60 "$ENGINE" rm -f "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# fail MESSAGE [CONTAINER]: says what failed, with the container's log.
fail() {
  echo "smoke_test: FAIL: $1" >&2
  if [ -n "${2:-}" ]; then
    echo "--- $ENGINE logs $2:" >&2
    timeout 30 "$ENGINE" logs "$2" 2>&1 | tail -n 30 >&2 || true
  fi
  exit 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# A port nobody listens on (the engine refuses a taken one, and we retry
# never: a clash between this probe and `run` is unlikely enough).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# The image's security settings as a Kubernetes pod would have them
# (docker/k8s/deployment.yaml). Podman mounts tmpfs on /tmp, /run and /var/tmp
# under --read-only unless told not to; Kubernetes does not, so neither here.
run_flags=(--read-only --memory 1g --cap-drop ALL --security-opt no-new-privileges)
if [ "$ENGINE" = podman ]; then run_flags+=(--read-only-tmpfs=false); fi

# wait_serving PORT CONTAINER: blocks until grpc.health.v1 says SERVING.
# /usr/bin/python3 with python3-grpcio asks the health service itself;
# without it, a successful `attnctl info` is the sign.
wait_serving() {
  if /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
    /usr/bin/python3 docker/grpc_health.py "127.0.0.1:$1" --wait 60 >/dev/null ||
      fail "not SERVING within 60 s" "$2"
  else
    local deadline=$((SECONDS + 60))
    until attnctl info --target="127.0.0.1:$1" --timeout=1 >/dev/null 2>&1; do
      [ "$SECONDS" -lt "$deadline" ] || fail "no answer to attnctl info within 60 s" "$2"
      sleep 0.2
    done
  fi
}

# attnctl ARGS...: the host's build, else the image's copy on the host network.
attnctl() {
  if [ -x "$ATTNCTL" ]; then
    timeout 60 "$ATTNCTL" "$@"
  else
    timeout 60 "$ENGINE" run --rm --network=host --entrypoint attnctl "$TAG" "$@"
  fi
}

# 1. The image. Reused only when its revision label is this clean HEAD;
# build.sh's layer cache makes a rebuild cheap when only docs or docker/
# changed (those are outside the build context).
REVISION="$(git_revision)"
if [[ "$REVISION" != unknown && "$REVISION" != *-dirty ]] &&
  [ "$(image_label "$TAG" org.opencontainers.image.revision)" = "$REVISION" ]; then
  echo "1/8 image $TAG: reused (built from HEAD ${REVISION:0:12}), $(image_size_mb "$TAG") MB"
else
  short="${REVISION:0:12}"
  if [[ "$REVISION" == *-dirty ]]; then short="$short-dirty"; fi
  echo "1/8 image $TAG: building from $short (log: $WORK/build.log) ..."
  start="$(now)"
  docker/build.sh --tag "$TAG" >"$WORK/build.log" 2>&1 ||
    { tail -n 40 "$WORK/build.log" >&2; fail "docker/build.sh failed (its log's end above)"; }
  label="$(image_label "$TAG" org.opencontainers.image.revision)"
  [ "$label" = "$REVISION" ] || fail "the new image is labelled revision '$label', not $REVISION"
  echo "1/8 image $TAG: built in $(since "$start") s, $(image_size_mb "$TAG") MB"
fi

# 2. Start the image's default command (the demo model) as a pod would run.
PORT="$(free_port)" || fail "no free port found"
start="$(now)"
timeout 60 "$ENGINE" run -d --name "$C1" "${run_flags[@]}" -p "127.0.0.1:$PORT:50051" \
  "$TAG" >/dev/null || fail "$ENGINE run failed" "$C1"
echo "2/8 started $C1 (--read-only, --memory 1g, --cap-drop ALL) on 127.0.0.1:$PORT; run took $(since "$start") s"

# 3. Cold start: from `run` to SERVING (container start + model load).
wait_serving "$PORT" "$C1"
echo "3/8 SERVING $(since "$start") s after $ENGINE run (cold start, demo model)"

# 4. Real calls through the published port.
info="$(attnctl info --target="127.0.0.1:$PORT")" || fail "attnctl info failed" "$C1"
grep -Eq '^model +demo_model$' <<<"$info" || fail "attnctl info: expected model demo_model, got: $info" "$C1"
encode="$(attnctl encode "hello world" --attention --target="127.0.0.1:$PORT")" ||
  fail "attnctl encode failed" "$C1"
shape="$(grep -Eo 'attention \([0-9, ]+\)' <<<"$encode")" ||
  fail "attnctl encode --attention: no attention in: $encode" "$C1"
echo "4/8 attnctl info: model demo_model; encode \"hello world\" --attention: $shape"

# 5. A model from the host, mounted read-only. The directory must be readable
# by the image's uid 10001 (mktemp makes it 0700).
if [ -x "$MAKE_DEMO_MODEL" ]; then
  "$MAKE_DEMO_MODEL" "$WORK/m" >/dev/null
else
  chmod 0777 "$WORK"
  timeout 60 "$ENGINE" run --rm --user "$(id -u):$(id -g)" -v "$WORK:/out" \
    --entrypoint make_demo_model "$TAG" /out/m >/dev/null
fi
chmod -R a+rX "$WORK"
PORT2="$(free_port)" || fail "no free port found"
timeout 60 "$ENGINE" run -d --name "$C2" "${run_flags[@]}" -p "127.0.0.1:$PORT2:50051" \
  -v "$WORK/m:/models/m:ro" "$TAG" --model=/models/m --address=0.0.0.0:50051 >/dev/null ||
  fail "$ENGINE run with a mounted model failed" "$C2"
wait_serving "$PORT2" "$C2"
info2="$(attnctl info --target="127.0.0.1:$PORT2")" || fail "attnctl info (mounted model) failed" "$C2"
grep -Eq '^model +m$' <<<"$info2" || fail "expected the mounted model m, got: $info2" "$C2"
mount_rw="$("$ENGINE" inspect --format '{{range .Mounts}}{{if eq .Destination "/models/m"}}{{.RW}}{{end}}{{end}}' "$C2")"
[ "$mount_rw" = false ] || fail "/models/m is not mounted read-only (RW=$mount_rw)" "$C2"
timeout 60 "$ENGINE" rm -f "$C2" >/dev/null
echo "5/8 served a host model mounted read-only at /models/m (model m)"

# 6. Read-only root and memory limit, as configured and as seen inside.
settings="$("$ENGINE" inspect --format '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Memory}}' "$C1")"
[ "$settings" = "true 1073741824" ] || fail "inspect: ReadonlyRootfs Memory = $settings" "$C1"
if timeout 30 "$ENGINE" exec "$C1" sh -c ': >/tmp/probe' 2>/dev/null; then
  fail "/tmp is writable: the root file system is not read-only" "$C1"
fi
echo "6/8 read-only root (a write to /tmp fails) and a 1 GiB memory limit; the server runs with both"

# 7. Not root.
uid="$(timeout 30 "$ENGINE" exec "$C1" id -u)" || fail "$ENGINE exec id -u failed" "$C1"
[ "$uid" != 0 ] || fail "the server runs as root" "$C1"
echo "7/8 the server runs as uid $uid"

# 8. SIGTERM (the image's STOPSIGNAL): no new calls, answer the accepted
# ones, exit 0, well before the engine's SIGKILL at GRACE seconds.
start="$(now)"
timeout $((GRACE + 30)) "$ENGINE" stop -t "$GRACE" "$C1" >/dev/null || fail "$ENGINE stop failed" "$C1"
took="$(since "$start")"
code="$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$C1")"
[ "$code" = 0 ] || fail "exit code $code after $ENGINE stop (SIGKILL is 137)" "$C1"
awk -v t="$took" -v g="$GRACE" 'BEGIN { exit !(t < g) }' ||
  fail "stop took $took s, not under the $GRACE s grace period" "$C1"
timeout 30 "$ENGINE" logs "$C1" 2>&1 | grep -q 'SIGTERM: no new calls' ||
  fail "the server did not log its SIGTERM shutdown" "$C1"
echo "8/8 $ENGINE stop -t $GRACE: exit code 0 after $took s"
echo "smoke_test: passed ($ENGINE, $TAG)"
