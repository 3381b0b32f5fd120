"""The command line: ``tilt-mcp-bridge [serve|status] [options]``.

Every option has an environment variable; Tilt's own names where Tilt has one.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from bridge import __version__
from bridge.errors import ConfigError
from bridge.settings import Secret, Settings, env_flag, tilt_dev_dir, token_source

EPILOG = """\
commands:
  serve    (default) run the MCP server; stdio unless --transport http
  status   connect to Tilt once, print a resource table, exit non-zero on failure

Tilt's token is read from TILT_TOKEN, else $TILT_DEV_DIR/token, else ~/.tilt-dev/token.
Every running Tilt is found in $TILT_DEV_DIR/config (else ~/.tilt-dev/config); the
default is the one whose Tiltfile folder holds the client's workspace (its MCP roots,
else the working directory). An explicit --port/TILT_PORT always wins.
Logs go to stderr only (stdout is the MCP wire under stdio).
"""


def _csv(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(v.strip() for v in value.split(",") if v.strip())


def _env_num(
    env: Mapping[str, str], name: str, default: float, kind: type[float] | type[int]
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}={raw[:60]!r} is not {what}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw[:60]!r} is not a finite number")
    return value


def _mib(option: str, value: float) -> int:
    if not math.isfinite(value) or not 0 <= value <= 1024 * 1024:
        raise ConfigError(f"{option} must be a number of MiB between 0 and 1048576, got {value}")
    return int(value * 1024 * 1024)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tilt-mcp-bridge",
        description="An MCP server that watches a running Tilt over its /ws/view websocket "
        "and serves its resources, logs and controls to AI coding agents.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("command", nargs="?", choices=("serve", "status"), default="serve")
    p.add_argument("--version", action="version", version=f"tilt-mcp-bridge {__version__}")
    g = p.add_argument_group("Tilt")
    g.add_argument(
        "--host",
        default=env.get("TILT_HOST", "localhost"),
        help="Tilt's web server host (env TILT_HOST; default localhost)",
    )
    g.add_argument(
        "--port",
        type=int,
        default=None,
        help="Tilt's web server port (env TILT_PORT). When given, that Tilt is the default; "
        "when not, every Tilt in $TILT_DEV_DIR/config is served and the one whose Tiltfile "
        "folder holds the workspace is the default (10350 when none runs)",
    )
    g.add_argument(
        "--demo",
        action="store_true",
        default=env_flag(env, "BRIDGE_DEMO"),
        help="serve a built-in fake Tilt replaying a recorded session, instead of connecting "
        "to a real one (env BRIDGE_DEMO=1)",
    )
    g.add_argument(
        "--demo-instances",
        type=int,
        default=int(_env_num(env, "BRIDGE_DEMO_INSTANCES", 1, int)),
        help="with --demo: how many fake Tilts (1-3; env BRIDGE_DEMO_INSTANCES; default 1)",
    )
    m = p.add_argument_group("MCP")
    m.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default=env.get("BRIDGE_TRANSPORT", "stdio"),
        help="stdio (default) or Streamable HTTP (env BRIDGE_TRANSPORT)",
    )
    m.add_argument(
        "--http-host",
        default=env.get("BRIDGE_HTTP_HOST", "127.0.0.1"),
        help="HTTP bind address (env BRIDGE_HTTP_HOST; default 127.0.0.1). A non-loopback "
        "address requires --http-token",
    )
    m.add_argument(
        "--http-port",
        type=int,
        default=int(_env_num(env, "BRIDGE_HTTP_PORT", 8765, int)),
        help="HTTP port (env BRIDGE_HTTP_PORT; default 8765; 0 = any free port)",
    )
    m.add_argument(
        "--http-token",
        default=None,
        help="bearer token HTTP clients must send (env BRIDGE_HTTP_TOKEN; prefer the env var)",
    )
    m.add_argument(
        "--allowed-origin",
        action="append",
        default=[o for o in env.get("BRIDGE_ALLOWED_ORIGINS", "").split(",") if o],
        help="extra browser Origin allowed on HTTP (repeatable; env BRIDGE_ALLOWED_ORIGINS, "
        "comma-separated). Loopback origins are always allowed",
    )
    m.add_argument(
        "--allowed-host",
        action="append",
        default=[h for h in env.get("BRIDGE_ALLOWED_HOSTS", "").split(",") if h],
        help="extra Host header value accepted on HTTP (repeatable; env BRIDGE_ALLOWED_HOSTS, "
        "comma-separated). Loopback names and the bind address are always accepted",
    )
    m.add_argument(
        "--read-only",
        action="store_true",
        default=env_flag(env, "BRIDGE_READ_ONLY"),
        help="do not register any tool that changes Tilt (env BRIDGE_READ_ONLY=1)",
    )
    m.add_argument(
        "--allow-tools",
        default=env.get("BRIDGE_ALLOW_TOOLS"),
        help="comma-separated tool names to expose; all others are hidden (env BRIDGE_ALLOW_TOOLS)",
    )
    m.add_argument(
        "--deny-tools",
        default=env.get("BRIDGE_DENY_TOOLS"),
        help="comma-separated tool names to hide (env BRIDGE_DENY_TOOLS)",
    )
    m.add_argument(
        "--channel-push",
        action="store_true",
        default=env_flag(env, "BRIDGE_CHANNEL_PUSH"),
        help="send concise events (build failed/recovered, crashed, Tilt down) over Claude "
        "Code's experimental claude/channel notifications (env BRIDGE_CHANNEL_PUSH=1)",
    )
    m.add_argument(
        "--log-notify-interval",
        type=float,
        default=_env_num(env, "BRIDGE_LOG_NOTIFY_INTERVAL", 1.0, float),
        help="at most one update per log URI per this many seconds (env "
        "BRIDGE_LOG_NOTIFY_INTERVAL; default 1.0)",
    )
    m.add_argument(
        "--handshake-wait",
        type=float,
        default=_env_num(env, "BRIDGE_HANDSHAKE_WAIT", 1.0, float),
        help="under stdio, the longest the first connection to Tilt waits for the client's "
        "handshake, in seconds (env BRIDGE_HANDSHAKE_WAIT; default 1.0)",
    )
    c = p.add_argument_group("cache and logging")
    c.add_argument(
        "--log-budget-mb",
        type=float,
        default=_env_num(env, "BRIDGE_LOG_BUDGET_MB", 32, float),
        help="memory for held log lines, shared fairly between resources (env "
        "BRIDGE_LOG_BUDGET_MB; default 32, Tilt itself keeps 2)",
    )
    c.add_argument(
        "--max-frame-mb",
        type=float,
        default=_env_num(env, "BRIDGE_MAX_FRAME_MB", 64, float),
        help="largest websocket frame accepted from Tilt (env BRIDGE_MAX_FRAME_MB; default 64)",
    )
    c.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=env.get("BRIDGE_LOG_LEVEL", "info"),
        help="stderr log level (env BRIDGE_LOG_LEVEL; default info)",
    )
    c.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default=env.get("BRIDGE_LOG_FORMAT", "auto"),
        help="console on a tty, JSON otherwise (env BRIDGE_LOG_FORMAT; default auto)",
    )
    return p


def parse_settings(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, Settings]:
    args = build_parser(env).parse_args(list(argv))
    http_token = args.http_token or env.get("BRIDGE_HTTP_TOKEN") or None
    port: int = args.port
    port_source: str | None = "--port"
    if port is None and env.get("TILT_PORT", "").strip():
        port, port_source = int(_env_num(env, "TILT_PORT", 10350, int)), "TILT_PORT"
    elif port is None:
        port, port_source = 10350, None
    settings = Settings(
        host=args.host,
        port=port,
        port_source=port_source,
        tilt_config=tilt_dev_dir(env) / "config",
        demo_instances=args.demo_instances,
        token=token_source(env),
        transport=args.transport,
        http_host=args.http_host,
        http_port=args.http_port,
        http_token=Secret(http_token) if http_token else None,
        allowed_origins=tuple(args.allowed_origin),
        allowed_hosts=tuple(args.allowed_host),
        read_only=args.read_only,
        allow_tools=_csv(args.allow_tools),
        deny_tools=_csv(args.deny_tools) or frozenset(),
        log_level=args.log_level,
        log_format=args.log_format,
        demo=args.demo,
        log_budget_bytes=_mib("--log-budget-mb", args.log_budget_mb),
        max_frame_bytes=_mib("--max-frame-mb", args.max_frame_mb),
        log_notify_interval_s=args.log_notify_interval,
        handshake_wait_s=args.handshake_wait,
        channel_push=args.channel_push,
    )
    return args.command, settings.validate()


def _exit_now(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    # Until the server's own handlers are installed (after ~1-3 s of imports), SIGTERM
    # must still stop us: as PID 1 in a container the default action does not apply.
    signal.signal(signal.SIGTERM, _exit_now)
    argv = sys.argv[1:] if argv is None else argv
    try:
        command, settings = parse_settings(argv, os.environ)
    except ConfigError as exc:
        print(f"tilt-mcp-bridge: {exc}", file=sys.stderr)
        return 2
    # Start-up makes about a million long-lived objects (the SDK's models and ours, the
    # tools); the collector would scan them again and again while they are made (~70 ms,
    # measured with bench/lean.py). It stays off until start-up is over:
    # bridge.lifecycle.settle_heap turns it back on.
    gc.disable()
    try:
        from bridge import app  # heavy imports only once the command line is valid

        if command == "status":
            gc.enable()
            return app.run_status(settings)
        return app.run_serve(settings)
    finally:
        gc.enable()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
