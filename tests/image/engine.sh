# shellcheck shell=bash
# Sourced by check_image.sh and bytecode_options.sh: the tools, a private Docker engine and the
# stand-in base image, on a machine with no Docker Hub. Needs root.
#
# In:  REPO, CACHE (the stand-in tarball's folder), fresh_base (true|false), keep_logs (a
#      folder or empty); BRIDGE_IMAGE_STORAGE=overlay2|vfs forces a storage driver.
# Out: DOCKER, DOCKER_HOST, WORK (scratch, removed at exit), STORAGE, BASE; an EXIT trap that
#      stops the dockerd started here (by its pid) and removes WORK.
#
# 1. installs docker.io and debootstrap (apt) when missing;
# 2. starts a dockerd of its own (no iptables, no bridge, its own data/exec roots and socket):
#    overlay2 where the kernel and file system allow it, else vfs (which copies the whole
#    image for every container: a few seconds per `docker run`);
# 3. the stand-in base: debootstrap a minimal Debian trixie with python3 (3.13) and busybox as
#    /bin/sh and as find/rm/sed/... ahead on PATH (Alpine's userland), the standard library's
#    bytecode removed (python:*-alpine ships none: its Dockerfile deletes every *.pyc), and
#    the host's CA bundle (this machine's TLS needs it; it lives in the base, never in the
#    Dockerfile); `docker import`ed as local/debian-python:3.13-trixie. The tarball is cached
#    in CACHE keyed by its inputs; fresh_base=true makes it anew.

SUITE=trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=local/debian-python:3.13-$SUITE
DOCKER=/usr/bin/docker # the docker.io client; another `docker` on PATH may be client-only

say() { printf '== %s\n' "$*"; }
elapsed() { echo $(($(date +%s) - $1)); }

[ "$(id -u)" -eq 0 ] || { echo "$(basename "$0"): needs root (dockerd, debootstrap)" >&2; exit 2; }

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
stop_dockerd() {
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    DOCKERD_PID=
    # Mounts a killed daemon may leave behind, deepest first.
    { grep -o " ${WORK}[^ ]*" /proc/mounts || true; } | sort -r |
        while read -r m; do umount -l "$m" || true; done
}
cleanup() {
    status=$?
    if [ -n "$keep_logs" ] && [ -d "$WORK" ]; then
        mkdir -p "$keep_logs"
        cp "$WORK"/*.log "$keep_logs"/ 2>/dev/null || true
    fi
    stop_dockerd
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts dockerd with storage driver $1; true once it answers, false if it exits first.
start_dockerd() {
    rm -rf "$WORK/data" "$WORK/exec"
    /usr/sbin/dockerd \
        --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
        -H "$DOCKER_HOST" --storage-driver "$1" \
        --iptables=false --ip6tables=false --bridge=none \
        >"$WORK/dockerd-$1.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 120); do
        $DOCKER version >/dev/null 2>&1 && return 0
        kill -0 "$DOCKERD_PID" 2>/dev/null || { DOCKERD_PID=; return 1; }
        sleep 0.5
    done
    return 1
}

t=$(date +%s)
export DOCKER_HOST="unix://$WORK/docker.sock"
STORAGE=
for driver in ${BRIDGE_IMAGE_STORAGE:-overlay2 vfs}; do
    if start_dockerd "$driver"; then STORAGE=$driver; break; fi
    stop_dockerd
done
if [ -z "$STORAGE" ]; then
    echo "dockerd did not start:" >&2
    tail -n 20 "$WORK"/dockerd-*.log >&2
    exit 1
fi
say "dockerd pid $DOCKERD_PID ready, storage $STORAGE ($(elapsed "$t") s)"

# --------------------------------------------------------------------- 3. stand-in base
t=$(date +%s)
INCLUDE=python3,python3-venv,ca-certificates,busybox
APPLETS="find rm mkdir chown sed tr stat id dirname cat ls"
key=$(
    {
        echo "v3 $SUITE $MIRROR $INCLUDE $APPLETS no-stdlib-bytecode"
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
    # As python:*-alpine: no bytecode for the standard library (Debian compiles it when the
    # package is installed), so a start there compiles what the image does not bring.
    find "$rootfs"/usr/lib/python3* -depth -type d -name __pycache__ -exec rm -rf {} +
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

# The bytes of the extension modules (*.so*) under /opt/bridge in image $1: the only files of
# the layers that differ between glibc and musl (wheel_layer.py gives the musl figure).
so_bytes() {
    $DOCKER run --rm --entrypoint python3 "$1" -c '
import os
print(sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk("/opt/bridge")
          for f in fs if ".so" in f and not os.path.islink(os.path.join(r, f))))'
}
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
