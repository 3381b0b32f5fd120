"""Assemble the MCP server for a running bridge and serve it over stdio or HTTP."""

from __future__ import annotations

import structlog
from anyio.abc import TaskGroup
from fastmcp import FastMCP

from bridge.mcp.context import BridgeContext
from bridge.mcp.server import apply_tool_filters, build_server
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.client import TiltHTTP

log = structlog.get_logger("bridge.mcp")


async def assemble(settings: Settings, store: Store, http: TiltHTTP | None) -> FastMCP:
    ctx = BridgeContext(store=store, settings=settings, http=http)
    mcp = build_server(ctx)
    await apply_tool_filters(mcp, ctx)
    return mcp


async def run_mcp(settings: Settings, store: Store, http: TiltHTTP, tg: TaskGroup) -> None:
    mcp = await assemble(settings, store, http)
    if settings.transport == "stdio":
        await mcp.run_stdio_async(show_banner=False, log_level=settings.log_level)
        return
    from bridge.mcp.http import serve_http

    await serve_http(mcp, settings, store)
