"""Configuration: flags and environment variables, following Tilt's own names."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bridge.errors import ConfigError


class Secret:
    """A string that never shows itself in ``repr``/``str`` (Tilt's token, the HTTP token)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class TokenSource:
    """Where Tilt's token comes from; re-read on a 403 so a rewritten file is picked up."""

    env_value: str | None = field(default=None, repr=False)  # the token itself: never shown
    path: Path | None = None

    def describe(self) -> str:
        if self.env_value:
            return "TILT_TOKEN"
        return str(self.path) if self.path else "nowhere"

    def read(self) -> Secret | None:
        if self.env_value:
            return Secret(self.env_value.strip())
        if self.path is None:
            return None
        try:
            value = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return Secret(value) if value else None


def tilt_dev_dir(env: Mapping[str, str]) -> Path:
    """``$TILT_DEV_DIR``, else ``~/.tilt-dev`` (as Tilt's ``dirs`` package)."""
    dev_dir = env.get("TILT_DEV_DIR")
    if dev_dir:
        return Path(dev_dir).expanduser()
    return Path(env.get("HOME", "~")).expanduser() / ".tilt-dev"


def token_source(env: Mapping[str, str]) -> TokenSource:
    """``TILT_TOKEN``, else ``$TILT_DEV_DIR/token``, else ``~/.tilt-dev/token``."""
    if env.get("TILT_TOKEN"):
        return TokenSource(env_value=env["TILT_TOKEN"])
    return TokenSource(path=tilt_dev_dir(env) / "token")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "localhost"
    port: int = 10350
    token: TokenSource = field(default_factory=TokenSource)
    transport: str = "stdio"
    http_host: str = "127.0.0.1"
    http_port: int = 8765
    http_token: Secret | None = None
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # extra Host values on HTTP (DNS rebinding guard)
    read_only: bool = False
    allow_tools: frozenset[str] | None = None
    deny_tools: frozenset[str] = frozenset()
    log_level: str = "info"
    log_format: str = "auto"
    demo: bool = False
    log_budget_bytes: int = 32 * 1024 * 1024
    max_frame_bytes: int = 64 * 1024 * 1024
    log_notify_interval_s: float = 1.0
    handshake_wait_s: float = 1.0
    """Under stdio, the longest the first connection to Tilt waits for the handshake."""
    channel_push: bool = False
    port_source: str | None = None
    """Where ``port`` came from: ``--port``, ``TILT_PORT``, or None (not given: the
    instance is chosen among the running Tilts, 10350 when none runs)."""
    tilt_config: Path | None = None
    """Tilt's ``$TILT_DEV_DIR/config``, watched for running Tilts (None: not watched,
    only ``port`` is served)."""
    demo_instances: int = 1

    @property
    def explicit_port(self) -> int | None:
        return self.port if self.port_source is not None else None

    @property
    def tilt_base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port}"

    @property
    def tilt_ws_url(self) -> str:
        return self.tilt_base_url.replace("http://", "ws://", 1) + "/ws/view"

    def validate(self) -> Settings:
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port/TILT_PORT must be 1-65535, got {self.port}")
        if not 1 <= self.demo_instances <= MAX_DEMO_INSTANCES:
            raise ConfigError(
                f"--demo-instances/BRIDGE_DEMO_INSTANCES must be 1-{MAX_DEMO_INSTANCES}, "
                f"got {self.demo_instances}"
            )
        if not 0 <= self.http_port < 65536:
            raise ConfigError(f"--http-port must be 0-65535, got {self.http_port}")
        if self.transport not in ("stdio", "http"):
            raise ConfigError(f"--transport must be stdio or http, got {self.transport!r}")
        if self.transport == "http" and not is_loopback(self.http_host) and self.http_token is None:
            raise ConfigError(
                f"--http-host {self.http_host} is not a loopback address: set --http-token "
                "(or BRIDGE_HTTP_TOKEN) so only clients with the bearer token can connect"
            )
        if self.log_budget_bytes < 64 * 1024:
            raise ConfigError("--log-budget-mb must be at least 0.0625 (64 KiB)")
        if self.max_frame_bytes < 1024 * 1024:
            raise ConfigError(
                f"--max-frame-mb/BRIDGE_MAX_FRAME_MB must be at least 1 (Tilt's first frame "
                f"alone can be 4 MB), got {self.max_frame_bytes / 1024 / 1024:g}"
            )
        if not (math.isfinite(self.log_notify_interval_s) and self.log_notify_interval_s >= 0):
            raise ConfigError(
                "--log-notify-interval/BRIDGE_LOG_NOTIFY_INTERVAL must be a number of seconds "
                f">= 0, got {self.log_notify_interval_s}"
            )
        if not (math.isfinite(self.handshake_wait_s) and 0 <= self.handshake_wait_s <= 600):
            raise ConfigError(
                "--handshake-wait/BRIDGE_HANDSHAKE_WAIT must be a number of seconds from 0 to "
                f"600, got {self.handshake_wait_s}"
            )
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(
                f"--log-level/BRIDGE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                f"got {_short(self.log_level)}"
            )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(
                f"--log-format/BRIDGE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                f"got {_short(self.log_format)}"
            )
        both = (self.allow_tools or frozenset()) & self.deny_tools
        if both:
            raise ConfigError(
                f"--allow-tools and --deny-tools both name {', '.join(sorted(both))}; "
                "name each tool in one of the two"
            )
        if self.allow_tools is not None and not self.allow_tools:
            raise ConfigError(
                "--allow-tools/BRIDGE_ALLOW_TOOLS names no tool: none would be served"
            )
        return self


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


TRUE: Final = ("1", "true", "yes", "on")
FALSE: Final = ("", "0", "false", "no", "off")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("auto", "console", "json")
MAX_DEMO_INSTANCES: Final = 3


def _short(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:60]) + f"… ({len(value)} chars)"


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """A boolean environment variable; anything but the usual spellings is an error."""
    raw = env.get(name, "").strip().lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ConfigError(
        f"{name}={_short(env[name])} is not a boolean; use 1/0, true/false, yes/no or on/off"
    )


def environ() -> Mapping[str, str]:
    return os.environ
