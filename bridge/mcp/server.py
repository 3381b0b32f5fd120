"""Build the FastMCP server: tools, resources, prompts, tool filtering, and the protocol
errors for what the server does not serve, in our words.

* an unknown method: JSON-RPC ``-32601`` (as the SDK answers), with a message that names the
  method (cut to ~100 characters) and where to see what the server offers;
* an unknown tool in ``tools/call``: the spec's protocol error, ``-32602`` "Unknown tool"
  (fastmcp 4 answers a tool *result* with ``isError`` instead), naming close matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext as FastCallNext
from fastmcp.server.middleware import Middleware, MiddlewareContext
from fastmcp.tools import Tool
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, METHOD_NOT_FOUND

from bridge import __version__
from bridge.errors import BridgeError, ConfigError, UnknownResource, close_matches
from bridge.lifecycle import StartGate
from bridge.mcp import (
    _sdk,
    channel,
    control,
    errors,
    instances,
    live,
    prompts,
    resources,
    schemas,
    tools,
    uris,
)
from bridge.mcp.context import BridgeContext
from bridge.mcp.uris import QUOTE_CHARS, quote_value

INSTRUCTIONS = """\
This server is a live view of a running Tilt (tilt.dev) dev environment: its resources
(services, builds, local commands), their build/runtime status, and their logs. Answers come
from a cache that Tilt keeps up to date over its websocket, so calls are cheap: start with
get_status, then describe_resource or get_logs for the resource that matters. Subscribe to
tilt://resources/{name} to hear about changes. If a call says Tilt is not connected, the
answer is the last known state. With several Tilts running, calls address the one whose
Tiltfile folder holds your workspace (get_status says which and why); list_instances shows
them all, every tool takes instance=<port or folder name>, and tilt://instances/{port}/…
addresses one in a resource URI.
"""

OFFERED: Final = "tools/list, resources/list and prompts/list say what this server offers"


def build_server(ctx: BridgeContext, gate: StartGate | None = None) -> FastMCP:
    mcp = FastMCP(
        "tilt-mcp-bridge",
        instructions=INSTRUCTIONS,
        version=__version__,
        mask_error_details=True,
        dereference_schemas=False,  # ours have no $ref but a shared $defs entry (output only)
        # Claude Code's channel contract: the server declares the capability.
        experimental_capabilities=channel.capability() if ctx.settings.channel_push else None,
    )
    _sdk.install_light_state_store(mcp)  # not key_value + beartype on the first call
    errors.install(mcp, ctx)  # invalid arguments and unknown URIs, in our words
    tools.register(mcp, ctx)
    instances.register(mcp, ctx)
    live.register(mcp, ctx)
    control.register_read(mcp, ctx)
    if not ctx.settings.read_only:
        control.register_write(mcp, ctx)
    resources.register(mcp, ctx)
    prompts.register(mcp, ctx)
    if gate is not None and not gate.is_open:  # over HTTP it is open from the start
        mcp.add_middleware(Handshake(gate))
    mcp.add_middleware(RootsChanged(ctx))
    mcp.add_middleware(QualifiedUris(ctx))
    mcp.add_middleware(CompactInputs())
    _sdk.add_outermost_middleware(mcp, ProtocolErrors(mcp))
    return mcp


class CompactInputs(Middleware):
    """``tools/list``: input schemas as :func:`bridge.mcp.schemas.compact_input` cuts them;
    arguments are still validated against the signatures."""

    async def on_list_tools(
        self, context: MiddlewareContext[Any], call_next: FastCallNext[Any, Sequence[Tool]]
    ) -> Sequence[Tool]:
        listed = await call_next(context)
        return [
            t.model_copy(update={"parameters": schemas.compact_input(t.parameters)}) for t in listed
        ]


class QualifiedUris(Middleware):
    """``tilt://instances/{port}/…`` naming no running Tilt, or a resource that Tilt does
    not have: the same clean "resource not found" as the un-qualified URIs get from
    :mod:`bridge.mcp.errors` (checked against that instance, not the default)."""

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx

    async def on_read_resource(
        self, context: MiddlewareContext[Any], call_next: FastCallNext[Any, Any]
    ) -> Any:
        uri = str(context.message.uri)
        try:
            parsed = uris.parse(uri)
        except uris.UriRefused:
            return await call_next(context)  # answered by bridge.mcp.errors
        if parsed.port is not None:
            try:
                target = resources.target_of(self.ctx, parsed.port)
                if parsed.name is not None:
                    store = target.store
                    if parsed.name not in store.state.resources and not store.logs.line_count(
                        parsed.name
                    ):
                        known = set(store.state.resources) | (set(store.logs.resources()) - {""})
                        raise UnknownResource("resource", parsed.name, known)
            except BridgeError as exc:
                raise errors.not_found(uri, str(exc)) from None
        return await call_next(context)


class Handshake(Middleware):
    """Open the start gate once the client has its ``initialize`` answer: on
    ``notifications/initialized``, or after any other request (2026-07-28 has no handshake)."""

    def __init__(self, gate: StartGate) -> None:
        self.gate = gate

    async def on_notification(
        self, context: MiddlewareContext[Any], call_next: FastCallNext[Any, Any]
    ) -> Any:
        if context.method == "notifications/initialized":
            self.gate.open()
        return await call_next(context)

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: FastCallNext[Any, Any]
    ) -> Any:
        try:
            return await call_next(context)
        finally:
            # a client's request (the server's own list_tools has no request context)
            fctx = context.fastmcp_context
            if (
                context.method != "initialize"
                and fctx is not None
                and fctx.request_context is not None
            ):
                self.gate.open()


class RootsChanged(Middleware):
    """``notifications/roots/list_changed``: ask that session for its roots again."""

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx

    async def on_notification(
        self, context: MiddlewareContext[Any], call_next: FastCallNext[Any, Any]
    ) -> Any:
        if context.method == "notifications/roots/list_changed":
            fctx = context.fastmcp_context
            session_id = None
            if fctx is not None:
                try:
                    session_id = fctx.session_id
                except RuntimeError:
                    session_id = None
            self.ctx.forget_roots(session_id)
        return await call_next(context)


class ProtocolErrors:
    """SDK middleware: unknown methods and unknown tools answered in our words."""

    def __init__(self, mcp: FastMCP) -> None:
        self.mcp = mcp

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        try:
            result = await call_next(ctx)
        except MCPError as exc:
            if exc.code != METHOD_NOT_FOUND:
                raise
            raise MCPError(
                METHOD_NOT_FOUND,
                f"method {quote_value(ctx.method)} is not served at protocol "
                f"{ctx.protocol_version or 'unknown'}; {OFFERED}.",
                data=ctx.method[:QUOTE_CHARS],
            ) from None
        if ctx.method == "tools/call" and isinstance(result, dict) and result.get("isError"):
            name = ctx.params.get("name") if isinstance(ctx.params, dict) else None
            if isinstance(name, str):
                await self._refuse_unknown(name)
        return result

    async def _refuse_unknown(self, name: str) -> None:
        """Raise the spec's "Unknown tool" protocol error if no tool is called ``name``
        (only after an error result: a known tool's own error stays a tool result)."""
        names = sorted(t.name for t in await self.mcp.list_tools())
        if name in names:
            return
        matches = close_matches(name, names) if len(name) <= QUOTE_CHARS else []
        hint = f"did you mean {', '.join(matches)}?" if matches else "tools: " + ", ".join(names)
        raise MCPError(
            INVALID_PARAMS,
            f"Unknown tool: {quote_value(name)}; {hint} (tools/list describes each).",
        )


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
