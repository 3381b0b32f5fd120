#!/usr/bin/env bash
# Measure the image's bytecode options side by side (the table in docs/docker.md, "Bytecode").
#
#   sudo tests/image/bytecode_options.sh [--starts N] [--fresh-base] [--keep-logs DIR]
#
# Uses tests/image/engine.sh (dockerd, stand-in base without standard-library bytecode, as
# python:*-alpine), then for each option builds the Dockerfile (the install layers are built
# once and cached; each option redoes only its bytecode step and the final stage), runs the
# whole of mcp_driver.py against it (every tool, resource and prompt, both transports: an
# option that breaks the image fails here) and its start times: `docker run -i --rm` ->
# initialize answered, against the bridge's own start outside the container, alternated in
# the same run. Sizes on python:3.13-alpine: the published base + the layers measured here,
# their extension modules swapped for the musllinux ones (wheel_layer.py), as check_image.sh.
#
# Options: BYTECODE=none, pycache, sourceless, zip (the Dockerfile's), and sourceless-O1:
# sourceless with the dependencies compiled at optimization level 1 (asserts and `if
# __debug__:` blocks removed; docstrings kept), made by editing a copy of the Dockerfile.
# Not measured: -OO, which strips docstrings, and fastmcp takes the tools' descriptions from
# their docstrings.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${BRIDGE_IMAGE_CACHE:-/var/cache/tilt-mcp-bridge-image}
ALPINE_BASE_MB=45.58 # python:3.13-alpine (3.13.15-alpine3.24, amd64), docker-library/repo-info
OPTIONS="none pycache sourceless sourceless-O1 zip"

starts=7
fresh_base=false
keep_logs=
while [ $# -gt 0 ]; do
    case $1 in
        --starts) starts=$2; shift ;;
        --fresh-base) fresh_base=true ;;
        --keep-logs) keep_logs=$2; shift ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bytecode_options: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "${PYTHON:-}" ]; then :
elif [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python
else PYTHON=python3
fi
t_start=$(date +%s)

# shellcheck source=tests/image/engine.sh
. "$REPO/tests/image/engine.sh"

t=$(date +%s)
musl_so=$("$PYTHON" "$REPO/tests/image/wheel_layer.py" --python-version 3.13 \
    --platform musllinux_1_2_x86_64 --platform musllinux_1_1_x86_64 | sed -n 's/^so-bytes: //p')
say "musllinux extension modules: $(mb "$musl_so") MB ($(elapsed "$t") s)"
base_bytes=$($DOCKER image inspect -f '{{.Size}}' "$BASE")

rows=
for option in $OPTIONS; do
    t=$(date +%s)
    image=tilt-mcp-bridge:bytecode-$option
    dockerfile=$REPO/Dockerfile
    if [ "$option" = sourceless-O1 ]; then
        dockerfile=$WORK/Dockerfile.O1
        sed 's/\$compile -b /$compile -o 1 -b /' "$REPO/Dockerfile" >"$dockerfile"
        grep -q -- '-o 1 -b' "$dockerfile" || { echo "no compileall -b line to edit" >&2; exit 1; }
    fi
    if ! DOCKER_BUILDKIT=1 $DOCKER build --network host --progress plain -f "$dockerfile" \
        --build-arg BASE_IMAGE="$BASE" --build-arg BYTECODE="${option%-O1}" -t "$image" \
        "$REPO" >"$WORK/build-$option.log" 2>&1; then
        tail -40 "$WORK/build-$option.log" >&2
        exit 1
    fi
    build_s=$(elapsed "$t")
    above=$(($($DOCKER image inspect -f '{{.Size}}' "$image") - base_bytes))
    layers=$((above - $(so_bytes "$image") + musl_so))
    allow=
    [ "$option" = none ] && allow=--allow-compile
    say "$option: built in $build_s s; mcp_driver.py"
    # shellcheck disable=SC2086 # $allow: empty or one flag
    "$PYTHON" "$REPO/tests/image/mcp_driver.py" --image "$image" --docker "$DOCKER" \
        --starts "$starts" $allow >"$WORK/driver-$option.log" 2>&1 || {
        cat "$WORK/driver-$option.log" >&2
        exit 1
    }
    grep -e '^image-check: \(bytecode\|start\.\)' -e 'result' "$WORK/driver-$option.log"
    median() { sed -n "s/^image-check: start\.$1_s: median \([0-9.]*\) .*/\1/p" "$WORK/driver-$option.log"; }
    rows="$rows$option $(mb "$above") $(mb "$layers") $(median container) $(median outside) $(median engine_floor)
"
    $DOCKER image rm "$image" >/dev/null
done

echo
echo "| option | layers, stand-in | layers, musl | total on python:3.13-alpine | container start | outside start | container - outside | engine floor |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s' "$rows" | awk -v base="$ALPINE_BASE_MB" '{
    printf "| %s | %s MB | %s MB | %.1f MB | %s s | %s s | %+.2f s | %s s |\n",
        $1, $2, $3, base + $3, $4, $5, $4 - $5, $6 }'
echo
say "medians of $starts starts each; storage $STORAGE; $(nproc) cores; done in $(elapsed "$t_start") s"
