#!/usr/bin/env bash
# Build the Docker image and check it end to end, on a machine with no Docker Hub.
#
#   sudo tests/image/check_image.sh [--fresh-base] [--skip-wheels] [--keep-logs DIR]
#
# 1. installs docker.io and debootstrap (apt) when missing;
# 2. starts a private dockerd (vfs, no iptables, no bridge, its own data/exec roots and socket);
# 3. makes the stand-in base: debootstrap a minimal Debian trixie with python3 (3.13), busybox
#    as /bin/sh and as find/rm/sed/... ahead on PATH (Alpine's userland), and the host's CA
#    bundle (this machine's TLS needs it; it lives in the base, never the Dockerfile),
#    `docker import` it as local/debian-python:3.13-trixie. The tarball is cached in
#    $BRIDGE_IMAGE_CACHE (default /var/cache/tilt-mcp-bridge-image) keyed by its inputs;
#    --fresh-base makes it anew;
# 4. builds the Dockerfile with --build-arg BASE_IMAGE=<that base>;
# 5. prints the image size and the size of the layers above the base, and fails when those
#    layers pass LAYER_BUDGET_MB (60);
# 6. runs tests/image/mcp_driver.py: docker run -i against the fake Tilt on the host network,
#    MCP handshake, every tool/resource/prompt, stdout purity, SIGTERM stop < 2 s, HTTP mode
#    with its health check, --demo, status, the entrypoint's refusals, the image's contents;
# 7. unless --skip-wheels: every dependency at its constraints.txt pin from musllinux wheels
#    for CPython 3.13, and the /opt/bridge layer size estimated from them (wheel_layer.py);
# 8. stops the dockerd it started (by pid) and removes its scratch folder.
#
# Needs root. PYTHON (default .venv/bin/python, else python3) must have the project installed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${BRIDGE_IMAGE_CACHE:-/var/cache/tilt-mcp-bridge-image}
SUITE=trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=local/debian-python:3.13-$SUITE
IMAGE=tilt-mcp-bridge:check
DOCKER=/usr/bin/docker # the docker.io client; another `docker` on PATH may be client-only
LAYER_BUDGET_MB=60
ALPINE_BASE_MB=45.58 # python:3.13-alpine (3.13.15-alpine3.24, amd64), docker-library/repo-info

fresh_base=false
skip_wheels=false
keep_logs=
while [ $# -gt 0 ]; do
    case $1 in
        --fresh-base) fresh_base=true ;;
        --skip-wheels) skip_wheels=true ;;
        --keep-logs) keep_logs=$2; shift ;;
        -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check_image: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ -n "${PYTHON:-}" ]; then :
elif [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python
else PYTHON=python3
fi

say() { printf '== %s\n' "$*"; }
t_start=$(date +%s)
elapsed() { echo $(($(date +%s) - $1)); }

[ "$(id -u)" -eq 0 ] || { echo "check_image: needs root (dockerd, debootstrap)" >&2; exit 2; }
"$PYTHON" -c 'import bridge.testing' 2>/dev/null || {
    echo "check_image: $PYTHON cannot import bridge.testing; install the project (.ci/run does)" >&2
    exit 2
}

# ---------------------------------------------------------------------------- 1. tools
t=$(date +%s)
missing=
[ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ] || missing="$missing docker.io"
command -v debootstrap >/dev/null || missing="$missing debootstrap"
if [ -n "$missing" ]; then
    say "apt-get install$missing"
    apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
say "tools ready ($(elapsed "$t") s): $($DOCKER --version)"

# ------------------------------------------------------------------------- 2. dockerd
WORK=$(mktemp -d /var/tmp/bridge-image-check.XXXXXX)
DOCKERD_PID=
cleanup() {
    status=$?
    if [ -n "$keep_logs" ] && [ -d "$WORK" ]; then
        mkdir -p "$keep_logs"
        cp "$WORK"/*.log "$keep_logs"/ 2>/dev/null || true
    fi
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    # Mounts a killed daemon may leave behind, deepest first.
    { grep -o " ${WORK}[^ ]*" /proc/mounts || true; } | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t=$(date +%s)
export DOCKER_HOST="unix://$WORK/docker.sock"
/usr/sbin/dockerd \
    --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    -H "$DOCKER_HOST" --storage-driver vfs \
    --iptables=false --ip6tables=false --bridge=none \
    >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 120); do
    $DOCKER version >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$WORK/dockerd.log" >&2; exit 1; }
    sleep 0.5
done
$DOCKER version >/dev/null || { echo "dockerd did not answer" >&2; tail -20 "$WORK/dockerd.log" >&2; exit 1; }
say "dockerd pid $DOCKERD_PID ready ($(elapsed "$t") s)"

# --------------------------------------------------------------------- 3. stand-in base
t=$(date +%s)
INCLUDE=python3,python3-venv,ca-certificates,busybox
# Busybox's sh and tools ahead of Debian's (/bin/sh, /usr/local/bin first on PATH): every RUN
# of the Dockerfile and the image's entrypoint.sh then run on the userland python:*-alpine has.
APPLETS="find rm mkdir chown sed tr stat id dirname cat ls"
key=$(
    {
        echo "v2 $SUITE $MIRROR $INCLUDE $APPLETS"
        cat /etc/ssl/certs/ca-certificates.crt
    } | sha256sum | cut -c1-16
)
base_tar=$CACHE/debian-python-$SUITE-$key.tar
if $fresh_base || [ ! -s "$base_tar" ]; then
    say "debootstrap --variant=minbase --include=$INCLUDE $SUITE"
    rootfs=$WORK/rootfs
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    ln -sf busybox "$rootfs/usr/bin/sh"
    for applet in $APPLETS; do ln -s /usr/bin/busybox "$rootfs/usr/local/bin/$applet"; done
    # Machine-specific: this host's CA bundle, so pip inside builds trusts its TLS.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    # A smaller stand-in imports and copies faster; none of this is used by the build.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/usr/share/info/*
    mkdir -p "$CACHE"
    tar -C "$rootfs" -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$rootfs"
    base_how="made by debootstrap"
else
    base_how="reused $base_tar (--fresh-base to remake)"
fi
$DOCKER import --change 'CMD ["python3"]' "$base_tar" "$BASE" >/dev/null
probe=$($DOCKER run --rm "$BASE" sh -c 'python3 --version; find --help 2>&1 | head -1' | tr '\n' ' ')
say "base $BASE: $base_how ($(elapsed "$t") s); $probe"

# ---------------------------------------------------------------------------- 4. build
t=$(date +%s)
version=$("$PYTHON" -c 'import bridge; print(bridge.__version__)')
revision=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
say "docker build --build-arg BASE_IMAGE=$BASE (version $version)"
if ! DOCKER_BUILDKIT=1 $DOCKER build --network host --progress plain \
    --build-arg BASE_IMAGE="$BASE" --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log" >&2
    exit 1
fi
build_s=$(elapsed "$t")
say "built $IMAGE in $build_s s"

# ---------------------------------------------------------------------------- 5. sizes
image_bytes=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
base_bytes=$($DOCKER image inspect -f '{{.Size}}' "$BASE")
above=$((image_bytes - base_bytes))
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
say "layers above the base:"
$DOCKER history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" |
    awk -F'\t' '$1 != "0B" { printf "   %8s  %s\n", $1, substr($2, 1, 90) }' | sed '$d'
echo "image-size: total $(mb "$image_bytes") MB = base $(mb "$base_bytes") MB" \
    "(stand-in Debian) + layers above $(mb "$above") MB"
echo "image-size: with python:3.13-alpine ($ALPINE_BASE_MB MB published) the same layers" \
    "would total $(awk -v a="$ALPINE_BASE_MB" -v b="$above" 'BEGIN { printf "%.1f", a + b / 1e6 }') MB"
if [ "$above" -gt $((LAYER_BUDGET_MB * 1000000)) ]; then
    echo "check_image: the layers above the base are $(mb "$above") MB, over $LAYER_BUDGET_MB MB" >&2
    exit 1
fi

# -------------------------------------------------------------------- 6. run the image
t=$(date +%s)
say "mcp_driver.py: the image against the fake Tilt"
"$PYTHON" "$REPO/tests/image/mcp_driver.py" --image "$IMAGE" --docker "$DOCKER"
say "image checks done ($(elapsed "$t") s)"

# --------------------------------------------------------------- 7. musllinux wheels
if ! $skip_wheels; then
    t=$(date +%s)
    say "musllinux wheels for CPython 3.13 (what python:3.13-alpine installs)"
    out=$("$PYTHON" "$REPO/tests/image/wheel_layer.py" --python-version 3.13 \
        --platform musllinux_1_2_x86_64 --platform musllinux_1_1_x86_64)
    echo "$out" | grep -v '^layer-estimate-bytes'
    musl=$(echo "$out" | sed -n 's/^layer-estimate-bytes: //p')
    echo "image-size: estimated on python:3.13-alpine: base $ALPINE_BASE_MB MB + layers" \
        "$(mb "$musl") MB = $(awk -v a="$ALPINE_BASE_MB" -v b="$musl" \
            'BEGIN { printf "%.1f", a + b / 1e6 }') MB"
    if [ "$musl" -gt $((LAYER_BUDGET_MB * 1000000)) ]; then
        echo "check_image: the musl layer estimate is over $LAYER_BUDGET_MB MB" >&2
        exit 1
    fi
    say "wheels checked ($(elapsed "$t") s)"
fi

say "image check passed in $(elapsed "$t_start") s (build $build_s s)"
