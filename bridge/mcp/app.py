"""Assemble the MCP server for a running bridge and serve it over stdio or HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from anyio.abc import TaskGroup
from fastmcp import FastMCP

from bridge.instances import Instances
from bridge.lifecycle import Shutdown, StartGate, settle_and_log
from bridge.log import get_logger
from bridge.mcp.context import BridgeContext
from bridge.mcp.notify import Pump
from bridge.mcp.server import apply_tool_filters, build_server
from bridge.mcp.subscriptions import SubscriptionHub
from bridge.mcp.uris import parse as parse_uri
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.client import TiltHTTP

log = get_logger("bridge.mcp")


@dataclass(slots=True)
class Assembled:
    mcp: FastMCP
    ctx: BridgeContext
    hub: SubscriptionHub
    pump: Pump


async def assemble(
    settings: Settings,
    store: Store | None,
    http: TiltHTTP | None,
    *,
    instances: Instances | None = None,
    cwd: Callable[[], str] | None = None,
    gate: StartGate | None = None,
) -> Assembled:
    """The server with every tool/resource/prompt, subscriptions installed, and its pump:
    around one ``store`` (and ``http``), or around the registry of ``instances``. The
    client's handshake opens ``gate``."""
    if instances is not None:
        ctx = BridgeContext(settings=settings, instances=instances, cwd=cwd)
    else:
        ctx = BridgeContext(store=store, settings=settings, http=http)
    mcp = build_server(ctx, gate)
    await apply_tool_filters(mcp, ctx)
    hub = SubscriptionHub(check_uri=parse_uri)  # only our URI shapes, at most 2 KB each
    hub.install(mcp)
    pump = Pump(
        mcp,
        ctx,
        hub,
        log_interval_s=settings.log_notify_interval_s,
        channel=settings.channel_push,
    )
    hub.on_subscribe = pump.prime
    return Assembled(mcp, ctx, hub, pump)


async def run_mcp(
    settings: Settings,
    instances: Instances,
    tg: TaskGroup,
    shutdown: Shutdown,
    gate: StartGate,
) -> None:
    """Serve until cancelled. Start-up is over for the collector when ``gate`` opens
    (under stdio: the client's handshake; over HTTP: now)."""
    app = await assemble(settings, None, None, instances=instances, gate=gate)
    await tg.start(app.pump.run)
    if gate.is_open:
        settle_and_log()
    else:
        gate.on_open = settle_and_log
    try:
        if settings.transport == "stdio":
            # fastmcp's own logger: quiet unless debugging (our logs say what matters)
            level = "debug" if settings.log_level == "debug" else "warning"
            gate.arm()
            await app.mcp.run_stdio_async(show_banner=False, log_level=level)
            return
        from bridge.mcp.http import serve_http

        # /healthz reports the bridge default as it is at each request
        await serve_http(app.mcp, settings, lambda: app.ctx.bridge_default().store, shutdown)
    finally:
        app.hub.close()
