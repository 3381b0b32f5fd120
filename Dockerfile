# tilt-mcp-bridge in a container: MCP over stdio (`docker run -i --rm`) or Streamable HTTP.
#
#   docker build -t tilt-mcp-bridge .
#   docker build --build-arg BASE_IMAGE=python:3.13-slim -t tilt-mcp-bridge:debian .
#
# BASE_IMAGE is any image with python3 (>= 3.11, with its venv module) and /bin/sh; both
# stages use it, so the venv's interpreter path is the same in the build and the final image.
# No `# syntax=` line on purpose: it would pull a frontend image at build time.
ARG BASE_IMAGE=python:3.13-alpine
# zip | sourceless | pycache | none: what the image holds as bytecode (the build stage says more).
ARG BYTECODE=zip

# ---------------------------------------------------------------------------- build stage
FROM ${BASE_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Every version comes from constraints.txt (the lock, shared with CI; bash .ci/upgrade-deps
# moves it): first the pinned pip and setuptools (our build backend), so neither the
# installer nor the build floats with the base image's release.
RUN python3 -m venv /opt/bridge
COPY constraints.txt ./
RUN /opt/bridge/bin/pip install --quiet --no-compile --only-binary=:all: -c constraints.txt \
        pip setuptools
COPY pyproject.toml README.md ./
COPY bridge ./bridge

# Build-stage only: binutils for `strip` (the package manager is whichever the base has).
# Unpinned on purpose: any binutils strips, and a pin would tie the build to one base release.
# hadolint ignore=DL3008,DL3018
RUN if command -v apk >/dev/null; then apk add --no-cache binutils; \
    elif command -v apt-get >/dev/null; then \
        apt-get update -qq && apt-get install -qq -y --no-install-recommends binutils \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# Our own wheel first (pure Python, built by the pinned setuptools, no isolated build env),
# then it and its runtime dependencies at the lock's versions (the lock's [dev] pins are not
# asked for, so not installed), from wheels only: no compiler is needed or present.
RUN /opt/bridge/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && /opt/bridge/bin/pip install --no-compile --only-binary=:all: -c constraints.txt \
        /tmp/wheels/*.whl

# Distributions that fastmcp/mcp declare for features the bridge never uses: fastmcp's own
# CLI (cyclopts, rich-rst, docstring-parser, pyperclip), OAuth and OpenAPI providers (authlib,
# pyjwt, openapi-pydantic, jsonschema and its family), skills/YAML config (pyyaml), client
# token storage (aiofile, caio), form parsing (python-multipart), pydantic's EmailStr
# (email-validator, dnspython), rich's Markdown (markdown-it-py, mdurl). docs/docker.md says
# why each is safe; `--build-arg PRUNE=` keeps them all.
ARG PRUNE="cyclopts rich-rst docstring-parser pyperclip pyyaml authlib pyjwt openapi-pydantic \
jsonschema jsonschema-specifications jsonschema-path referencing rpds-py attrs pathable \
aiofile caio python-multipart email-validator dnspython markdown-it-py mdurl"

# Then what only installing needs, and what nothing imports: pip, setuptools, console scripts
# other than ours, tests, type stubs, bytecode; and the symbol tables of the extension modules.
# tests/image/check_image.sh calls every tool, resource and prompt inside the built image.
RUN set -eu; \
    site="$(/opt/bridge/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    if [ -n "$PRUNE" ]; then /opt/bridge/bin/pip uninstall --yes --quiet $PRUNE; fi; \
    /opt/bridge/bin/python -m pip uninstall --yes --quiet pip; \
    find /opt/bridge/bin -type f ! -name tilt-mcp-bridge -exec rm -f {} +; \
    rm -rf "$site"/setuptools "$site"/setuptools-*.dist-info "$site"/_distutils_hack \
           "$site"/distutils-precedence.pth "$site"/pkg_resources; \
    find /opt/bridge -depth -type d \( -name __pycache__ -o -name tests \) -exec rm -rf {} +; \
    find /opt/bridge -type f \( -name '*.pyc' -o -name '*.pyi' \) -exec rm -f {} +; \
    if command -v strip >/dev/null; then \
        find /opt/bridge -type f -name '*.so*' -exec strip --strip-unneeded {} +; \
    fi

# Bytecode, so that no start compiles anything (docs/docker.md, "Bytecode"). BYTECODE:
#   zip (default): as sourceless, then every package made of bytecode alone (no extension
#       module, no data file; fastmcp's fastmcp.json schema is for editors, no code reads it)
#       moves into one deflated site-packages.zip, imported from there (zipimport; a .pth
#       file puts it on sys.path), and the standard library's bytecode (final stage) goes
#       into the zip that Python's own sys.path lists ahead of the standard library;
#   sourceless: every dependency as bytecode in place of its sources (compileall -b, then
#       the .py removed);
#   pycache: bytecode beside every source; none: sources only (each start compiles in memory).
# In every mode the bridge's own package keeps its sources beside its __pycache__, so its
# tracebacks show source lines. unchecked-hash: a .pyc is used as is, never checked against
# a source's mtime. (hadolint: the zip's members are named relative to site-packages, hence
# the cd; $pure is a list of names, split on purpose. Folders get entries of their own:
# zipimport finds a namespace package, such as opentelemetry, by its folder entry.)
ARG BYTECODE
# hadolint ignore=DL3003,SC2086
RUN set -eu; \
    site="$(/opt/bridge/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    compile="/opt/bridge/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash"; \
    case "$BYTECODE" in \
        none) exit 0 ;; \
        pycache) $compile "$site"; exit 0 ;; \
        sourceless | zip) ;; \
        *) echo "BYTECODE must be zip, sourceless, pycache or none, not '$BYTECODE'" >&2; exit 2 ;; \
    esac; \
    $compile -b -x '/site-packages/bridge/' "$site"; \
    find "$site" -name '*.py' ! -path "$site/bridge/*" -exec rm -f {} +; \
    $compile "$site/bridge"; \
    [ "$BYTECODE" = zip ] || exit 0; \
    cd "$site"; \
    pure=; \
    for entry in *; do \
        case $entry in bridge | *.dist-info | *.pth | *.so) continue ;; esac; \
        other="$(find "$entry" -type f ! -name '*.pyc' ! -name py.typed ! -name '*.md' \
            ! -path fastmcp/utilities/mcp_server_config/v1/schema.json)"; \
        if [ -z "$other" ]; then pure="$pure $entry"; fi; \
    done; \
    /opt/bridge/bin/python -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "x", zipfile.ZIP_DEFLATED, compresslevel=9); [z.write(f) for f in sorted(sys.argv[2:])]; z.close()' \
        ../site-packages.zip $(find $pure); \
    rm -rf $pure; \
    echo "$(dirname "$site")/site-packages.zip" > "$site"/zipped-packages.pth

# ---------------------------------------------------------------------------- final stage
FROM ${BASE_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tilt-mcp-bridge" \
      org.opencontainers.image.description="MCP server that watches a running Tilt over its /ws/view websocket" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/tilt-mcp-bridge/tilt-mcp-bridge" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric user (Kubernetes' runAsNonRoot checks the number), written straight into
# passwd/group so the same line works on Alpine (busybox) and Debian. The base image's own pip
# is removed too: nothing in the final image installs packages.
RUN set -eu; \
    echo 'bridge:x:10001:10001:tilt-mcp-bridge:/home/bridge:/sbin/nologin' >> /etc/passwd; \
    echo 'bridge:x:10001:' >> /etc/group; \
    mkdir -p /home/bridge/.tilt-dev; \
    chown -R 10001:10001 /home/bridge; \
    site="$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    rm -rf "$site"/pip "$site"/pip-*.dist-info /usr/local/bin/pip /usr/local/bin/pip3 \
           /usr/local/bin/pip3.*

COPY --from=build /opt/bridge /opt/bridge
COPY entrypoint.sh /usr/local/bin/entrypoint.sh

# The standard library's bytecode for what a start imports: python:*-alpine ships its standard
# library without any, so each start would compile asyncio, email, json, ... in memory. One
# start of the bridge (--demo, answering initialize, ended by the closed stdin) with bytecode
# writing still on makes Python write it, for the modules imported and no others; the answer
# must come, so a broken image fails here. BYTECODE=zip then moves what that start wrote into
# python3XX.zip beside the standard library (on sys.path ahead of it: zipimport), deflated,
# except the codecs (encodings/): zipimport needs cp437 to read a zip's names, before it can
# import anything from one. The sources stay where they are: tracebacks still show lines.
ARG BYTECODE
RUN set -eu; \
    [ "$BYTECODE" != none ] || exit 0; \
    init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"docker-build","version":"0"}}}'; \
    echo "$init" >/tmp/initialize.json; \
    stdlib="$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"; \
    find "$stdlib" -name '*.pyc' >/tmp/before; \
    out="$(/opt/bridge/bin/tilt-mcp-bridge --demo --log-level error </tmp/initialize.json)"; \
    case $out in *'"serverInfo"'*) ;; *) echo "the bridge did not start: $out" >&2; exit 1 ;; esac; \
    rm -f /tmp/initialize.json; \
    [ "$BYTECODE" = zip ] || { rm -f /tmp/before; exit 0; }; \
    stdzip="$(python3 -c 'import sys; print(next(p for p in sys.path if p.endswith("/python%d%d.zip" % sys.version_info[:2])))')"; \
    python3 -c 'import glob, os, sys, zipfile; std, before = sys.argv[2], set(open(sys.argv[3]).read().split()); new = sorted(p for p in glob.glob(std + "/**/__pycache__/*.pyc", recursive=True) if p not in before and not p.startswith(std + "/encodings/")); z = zipfile.ZipFile(sys.argv[1], "x", zipfile.ZIP_DEFLATED, compresslevel=9); [z.write(p, os.path.relpath(os.path.join(os.path.dirname(os.path.dirname(p)), os.path.basename(p).split(".")[0] + ".pyc"), std)) for p in new]; z.close(); [os.remove(p) for p in new]' \
        "$stdzip" "$stdlib" /tmp/before; \
    find "$stdlib" -depth -type d -name __pycache__ -empty -exec rmdir {} +; \
    rm -f /tmp/before

# TILT_DEV_DIR: the token is read from $TILT_DEV_DIR/token whatever user the container runs as
# (mount ~/.tilt-dev here read-only, or set TILT_TOKEN).
ENV PATH="/opt/bridge/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/bridge \
    TILT_DEV_DIR=/home/bridge/.tilt-dev

USER 10001:10001
WORKDIR /home/bridge

# Only HTTP mode listens (BRIDGE_TRANSPORT=http); stdio mode reads stdin and writes stdout.
EXPOSE 8765
# HTTP mode: GET /healthz. Stdio mode: the process is the check (nothing listens).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/entrypoint.sh", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD []
