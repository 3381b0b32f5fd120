#!/bin/sh
# Container entry point for tilt-mcp-bridge.
#
#   entrypoint.sh [bridge arguments...]   check the environment, then exec the bridge
#   entrypoint.sh healthcheck             the image's HEALTHCHECK (HTTP mode: GET /healthz)
#
# Under stdio, stdout is the MCP wire: this script never writes to it. Every message goes to
# stderr. The bridge is exec'd, so it is PID 1 and gets SIGTERM itself.
set -eu

me="tilt-mcp-bridge entrypoint"

die() {
    printf '%s: error: %s\n' "$me" "$*" >&2
    exit 2
}

warn() {
    printf '%s: warning: %s\n' "$me" "$*" >&2
}

# An integer environment variable within [lo, hi], when set.
check_int() {
    name=$1 lo=$2 hi=$3
    eval "value=\${$name-}"
    [ -n "$value" ] || return 0
    case $value in
        *[!0-9]*) die "$name must be a whole number from $lo to $hi, got '$value'" ;;
    esac
    # Strip leading zeros so the shell does not read the number as octal.
    n=$(printf '%s' "$value" | sed 's/^0*//')
    [ -n "$n" ] || n=0
    if [ "${#n}" -gt 5 ] || [ "$n" -lt "$lo" ] || [ "$n" -gt "$hi" ]; then
        die "$name must be a whole number from $lo to $hi, got '$value'"
    fi
}

# A positive decimal environment variable, when set.
check_number() {
    name=$1
    eval "value=\${$name-}"
    [ -n "$value" ] || return 0
    case $value in
        *[!0-9.]* | *.*.* | . ) die "$name must be a number such as 1 or 0.5, got '$value'" ;;
    esac
}

# One of the listed words, when set.
check_choice() {
    name=$1
    shift
    eval "value=\${$name-}"
    [ -n "$value" ] || return 0
    for choice in "$@"; do
        [ "$value" = "$choice" ] && return 0
    done
    die "$name must be one of: $*; got '$value'"
}

is_true() {
    case $(printf '%s' "${1-}" | tr '[:upper:]' '[:lower:]') in
        1 | true | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}

bridge=$(command -v tilt-mcp-bridge 2>/dev/null) ||
    die "the tilt-mcp-bridge command is not on PATH ($PATH); is the image intact?"

healthcheck() {
    # The bridge's own command-line parser reads PID 1's arguments and environment, so the
    # check probes the address the running bridge really listens on, however it was configured.
    exec "$(dirname "$bridge")/python" - "${BRIDGE_HEALTHCHECK_PID:-1}" <<'PY'
import os
import sys
import urllib.request
from pathlib import Path

from bridge.cli import parse_settings

proc = Path("/proc", sys.argv[1])
try:
    argv = [a.decode() for a in proc.joinpath("cmdline").read_bytes().split(b"\0")[:-1]]
    env = dict(
        item.split("=", 1)
        for item in proc.joinpath("environ").read_bytes().decode().split("\0")
        if "=" in item
    )
except OSError:  # not allowed to look: judge by this check's own environment
    argv, env = [], dict(os.environ)
# argv is [python, .../tilt-mcp-bridge, args...] or [python, -m, bridge, args...]
args = argv[3:] if argv[1:3] == ["-m", "bridge"] else argv[2:]
_, settings = parse_settings(args, env)
if settings.transport != "http":
    print("stdio transport: nothing listens; the running process is the check")
    sys.exit(0)
if settings.http_port == 0:
    print("--http-port 0: the port is chosen at start and cannot be probed")
    sys.exit(0)
host = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(
    settings.http_host, settings.http_host
)
host = f"[{host}]" if ":" in host and not host.startswith("[") else host
url = f"http://{host}:{settings.http_port}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as reply:
        print(reply.read().decode())
except OSError as exc:
    print(f"{url}: {exc}")
    sys.exit(1)
PY
}

if [ "${1-}" = healthcheck ]; then
    healthcheck
fi

# --help and --version need nothing from the environment.
for arg in "$@"; do
    case $arg in
        -h | --help | --version) exec "$bridge" "$@" ;;
    esac
done

check_int TILT_PORT 1 65535
check_int BRIDGE_HTTP_PORT 0 65535
check_choice BRIDGE_TRANSPORT stdio http
check_choice BRIDGE_LOG_LEVEL debug info warning error
check_choice BRIDGE_LOG_FORMAT auto console json
check_number BRIDGE_LOG_BUDGET_MB
check_number BRIDGE_MAX_FRAME_MB
check_number BRIDGE_LOG_NOTIFY_INTERVAL
if [ -n "${TILT_HOST+set}" ] && [ -z "$TILT_HOST" ]; then
    die "TILT_HOST is set but empty; unset it or name the host where 'tilt up' serves"
fi
if [ -n "${BRIDGE_HTTP_TOKEN+set}" ] && [ -z "$BRIDGE_HTTP_TOKEN" ]; then
    die "BRIDGE_HTTP_TOKEN is set but empty; unset it or give it a long random value"
fi

demo=false
is_true "${BRIDGE_DEMO-}" && demo=true
for arg in "$@"; do
    [ "$arg" = --demo ] && demo=true
done

# Tilt's token: TILT_TOKEN, else $TILT_DEV_DIR/token, else ~/.tilt-dev/token (as the bridge).
if [ "$demo" = false ] && [ -z "${TILT_TOKEN-}" ]; then
    token_file="${TILT_DEV_DIR:-${HOME:-}/.tilt-dev}/token"
    if [ -e "$token_file" ] && [ ! -r "$token_file" ]; then
        owner=$(stat -c '%u:%g, mode %a' "$token_file" 2>/dev/null || echo unknown)
        die "cannot read Tilt's token $token_file (owner $owner) as uid $(id -u):" \
            "run the container as its owner (docker run --user \"\$(id -u):\$(id -g)\" ...)" \
            "or pass the token in TILT_TOKEN"
    fi
    if [ ! -s "$token_file" ]; then
        warn "no Tilt token: TILT_TOKEN is unset and $token_file is missing or empty." \
            "Mount ~/.tilt-dev read-only at $(dirname "$token_file") or set TILT_TOKEN;" \
            "only a Tilt started with TILT_DISABLE_HUD_AUTH=1 accepts no token"
    fi
fi

exec "$bridge" "$@"
