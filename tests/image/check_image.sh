#!/usr/bin/env bash
# Build the Docker image and check it end to end, on a machine with no Docker Hub.
#
#   sudo tests/image/check_image.sh [--fresh-base] [--skip-wheels] [--keep-logs DIR]
#
# 1.-3. (tests/image/engine.sh) installs docker.io and debootstrap (apt) when missing; starts a
#    private dockerd (overlay2, else vfs; no iptables, no bridge, its own roots and socket);
#    makes the stand-in base: a minimal Debian trixie with python3 (3.13), busybox as /bin/sh
#    and find/rm/sed/... (Alpine's userland), no standard-library bytecode (as
#    python:*-alpine) and the host's CA bundle, cached in $BRIDGE_IMAGE_CACHE (default
#    /var/cache/tilt-mcp-bridge-image); --fresh-base makes it anew;
# 4. builds the Dockerfile with --build-arg BASE_IMAGE=<that base>;
# 5. prints the image size and the size of the layers above the base;
# 6. runs tests/image/mcp_driver.py: the image's contents (no module a start imports lacks
#    bytecode), the entrypoint's refusals, --demo, then against the fake Tilt on the host
#    network: MCP handshake, every tool/resource/prompt, stdout purity, SIGTERM stop < 2 s,
#    HTTP mode with its health check, status; and the start time: docker run -> initialize
#    answered against the bridge's own start outside the container (reported, not checked);
# 7. unless --skip-wheels: every dependency at its constraints.txt pin from musllinux wheels
#    for CPython 3.13, and the total on python:3.13-alpine: its published size + the layers
#    measured here with their extension modules swapped for the musl ones (wheel_layer.py);
#    fails over ALPINE_BUDGET_MB (85);
# 8. stops the dockerd it started (by pid) and removes its scratch folder.
#
# Needs root. PYTHON (default .venv/bin/python, else python3) must have the project installed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${BRIDGE_IMAGE_CACHE:-/var/cache/tilt-mcp-bridge-image}
IMAGE=tilt-mcp-bridge:check
ALPINE_BASE_MB=45.58 # python:3.13-alpine (3.13.15-alpine3.24, amd64), docker-library/repo-info
ALPINE_BUDGET_MB=85  # the image on python:3.13-alpine, base included
STARTS=${BRIDGE_IMAGE_STARTS:-7}

fresh_base=false
skip_wheels=false
keep_logs=
while [ $# -gt 0 ]; do
    case $1 in
        --fresh-base) fresh_base=true ;;
        --skip-wheels) skip_wheels=true ;;
        --keep-logs) keep_logs=$2; shift ;;
        -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check_image: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ -n "${PYTHON:-}" ]; then :
elif [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python
else PYTHON=python3
fi

t_start=$(date +%s)
"$PYTHON" -c 'import bridge.testing' 2>/dev/null || {
    echo "check_image: $PYTHON cannot import bridge.testing; install the project (.ci/run does)" >&2
    exit 2
}

# shellcheck source=tests/image/engine.sh
. "$REPO/tests/image/engine.sh"

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
say "layers above the base:"
$DOCKER history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" |
    awk -F'\t' '$1 != "0B" { printf "   %8s  %s\n", $1, substr($2, 1, 90) }' | sed '$d'
echo "image-size: total $(mb "$image_bytes") MB = base $(mb "$base_bytes") MB" \
    "(stand-in Debian) + layers above $(mb "$above") MB"

# -------------------------------------------------------------------- 6. run the image
t=$(date +%s)
say "mcp_driver.py: the image against the fake Tilt"
"$PYTHON" "$REPO/tests/image/mcp_driver.py" --image "$IMAGE" --docker "$DOCKER" \
    --starts "$STARTS" | tee "$WORK/driver.out"
say "image checks done ($(elapsed "$t") s)"

# ------------------------------------------------- 7. musllinux wheels, the Alpine total
glibc_so=$(so_bytes "$IMAGE")
alpine_how="extension modules as on glibc: --skip-wheels"
musl_so=$glibc_so
if ! $skip_wheels; then
    t=$(date +%s)
    say "musllinux wheels for CPython 3.13 (what python:3.13-alpine installs)"
    out=$("$PYTHON" "$REPO/tests/image/wheel_layer.py" --python-version 3.13 \
        --platform musllinux_1_2_x86_64 --platform musllinux_1_1_x86_64)
    echo "$out" | grep -v -e '^layer-estimate-bytes' -e '^so-bytes'
    musl_so=$(echo "$out" | sed -n 's/^so-bytes: //p')
    alpine_how="extension modules $(mb "$glibc_so") MB here, $(mb "$musl_so") MB from the musllinux wheels"
    say "wheels checked ($(elapsed "$t") s)"
fi
alpine_layers=$((above - glibc_so + musl_so))
alpine_total=$(awk -v a="$ALPINE_BASE_MB" -v b="$alpine_layers" 'BEGIN { printf "%.1f", a + b / 1e6 }')
echo "image-size: on python:3.13-alpine: base $ALPINE_BASE_MB MB (published) + layers" \
    "$(mb "$alpine_layers") MB = $alpine_total MB (budget $ALPINE_BUDGET_MB MB; $alpine_how)"

sed -n 's/^image-check: start\.\(container_s\|outside_s\|container_above_outside_s\): /image-summary: start \1: /p' \
    "$WORK/driver.out"
echo "image-summary: size on python:3.13-alpine: $alpine_total MB (budget $ALPINE_BUDGET_MB MB)," \
    "layers $(mb "$alpine_layers") MB; storage $STORAGE"
if awk -v t="$alpine_total" -v b="$ALPINE_BUDGET_MB" 'BEGIN { exit !(t > b) }'; then
    echo "check_image: $alpine_total MB on python:3.13-alpine, over $ALPINE_BUDGET_MB MB" >&2
    exit 1
fi

say "image check passed in $(elapsed "$t_start") s (build $build_s s)"
