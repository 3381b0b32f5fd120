"""Build the FastMCP server: tools, resources, prompts, and tool filtering."""

from __future__ import annotations

from fastmcp import FastMCP

from bridge import __version__
from bridge.errors import ConfigError, close_matches
from bridge.mcp import channel, control, live, prompts, resources, tools
from bridge.mcp.context import BridgeContext

INSTRUCTIONS = """\
This server is a live view of a running Tilt (tilt.dev) dev environment: its resources
(services, builds, local commands), their build/runtime status, and their logs. Answers come
from a cache that Tilt keeps up to date over its websocket, so calls are cheap: start with
get_status, then describe_resource or get_logs for the resource that matters. Subscribe to
tilt://resources/{name} to hear about changes. If a call says Tilt is not connected, the
answer is the last known state.
"""


def build_server(ctx: BridgeContext) -> FastMCP:
    mcp = FastMCP(
        "tilt-mcp-bridge",
        instructions=INSTRUCTIONS,
        version=__version__,
        mask_error_details=True,
        # Claude Code's channel contract: the server declares the capability.
        experimental_capabilities=channel.capability() if ctx.settings.channel_push else None,
    )
    tools.register(mcp, ctx)
    live.register(mcp, ctx)
    control.register_read(mcp, ctx)
    if not ctx.settings.read_only:
        control.register_write(mcp, ctx)
    resources.register(mcp, ctx)
    prompts.register(mcp, ctx)
    return mcp


async def apply_tool_filters(mcp: FastMCP, ctx: BridgeContext) -> None:
    """``--allow-tools`` / ``--deny-tools``: hide tools by name (``--read-only`` already kept
    the write tools from being registered at all)."""
    settings = ctx.settings
    names = {t.name for t in await mcp.list_tools()}
    for wanted in sorted((settings.allow_tools or frozenset()) | settings.deny_tools):
        if wanted in names:
            continue
        if wanted in control.WRITE_TOOLS and settings.read_only:
            if settings.allow_tools is not None and wanted in settings.allow_tools:
                raise ConfigError(
                    f"--allow-tools names {wanted!r}, a write tool, but --read-only registers "
                    "no write tool; drop one of the two"
                )
            continue  # denying a tool that --read-only already removed is harmless
        matches = close_matches(wanted, names | control.WRITE_TOOLS)
        hint = (
            f"did you mean {', '.join(matches)}?"
            if matches
            else "tools: " + ", ".join(sorted(names | control.WRITE_TOOLS))
        )
        raise ConfigError(f"--allow-tools/--deny-tools name an unknown tool {wanted!r}; {hint}")
    remove: set[str] = set()
    if settings.allow_tools is not None:
        remove |= names - settings.allow_tools
    remove |= settings.deny_tools
    for name in sorted(remove & names):
        mcp.local_provider.remove_tool(name)
