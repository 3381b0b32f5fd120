"""Clean MCP errors for what an agent gets wrong, in our own words.

A fastmcp middleware (:class:`CleanErrors`, installed by :func:`install`):

* **invalid tool arguments** (pydantic's text ends in a pydantic.dev URL and quotes
  the whole value) become a tool error result (``isError``, as the spec asks for input
  validation errors) naming each argument, what is allowed and at most ~100 characters
  of the bad value;
* **unknown tools** answer the spec's JSON-RPC ``-32602`` with close matches;
* **resource URIs** are checked before fastmcp looks for a handler: a URI that is not
  one of ours, or names a resource Tilt does not have, answers the SDK's "resource
  not found" error (``-32602`` with ``data.uri``; the 2026-07-28 spec retired ``-32002``)
  without the traceback fastmcp logs for a failing handler;
* **prompts** naming an unknown resource answer ``-32602`` in one line, likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import mcp_types as t
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError as McpToolError
from fastmcp.exceptions import ValidationError as FastMCPValidationError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from mcp import MCPError
from pydantic import ValidationError as PydanticValidationError

from bridge.core.inputs import MAX_NAME, quote
from bridge.errors import UnknownResource, close_matches
from bridge.mcp.context import BridgeContext
from bridge.mcp.resources import parse_uri

MAX_URI_QUOTE: Final = 200
MAX_ARGUMENT_CHARS: Final = 64 * 1024
"""Any string argument longer than this is refused before validation (``cursor``,
button inputs, …); tools declare tighter ``max_length`` caps where they know better."""
MAX_LIST_ITEMS: Final = 1000


def _describe(value: Any) -> str:
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    return quote(value)


def explain(tool: str, exc: PydanticValidationError, schema: Mapping[str, Any]) -> str:
    """A pydantic validation error → one line per bad argument, written for the model."""
    props: Mapping[str, Any] = schema.get("properties", {})
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err.get("loc", ())]
        arg = loc[0] if loc else "(arguments)"
        path = ".".join(loc) or arg
        kind = err.get("type", "")
        ctx = err.get("ctx", {}) or {}
        got = _describe(err.get("input"))
        if kind in ("unexpected_keyword_argument", "extra_forbidden"):
            allowed = ", ".join(sorted(props)) or "no arguments"
            out.append(f"unknown argument {quote(arg)}; {tool} takes: {allowed}")
            continue
        if kind in ("missing", "missing_argument"):
            out.append(f"{path} is required")
            continue
        if kind == "string_too_long":
            out.append(
                f"{path} is too long ({len(err.get('input') or '')} chars); at most "
                f"{ctx.get('max_length')} characters"
            )
            continue
        if kind == "too_long":
            out.append(f"{path} has too many items ({got}); at most {ctx.get('max_length')}")
            continue
        bounds = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }
        if kind in bounds:
            word, key = bounds[kind]
            out.append(f"{path} must be {word} {ctx.get(key)}; got {got}")
            continue
        expected = {
            "int_parsing": "an integer",
            "int_type": "an integer",
            "int_from_float": "an integer",
            "float_parsing": "a number",
            "float_type": "a number",
            "bool_parsing": "true or false",
            "bool_type": "true or false",
            "string_type": "a string",
            "list_type": "a list",
            "dict_type": "an object",
        }.get(kind)
        if expected is not None:
            out.append(f"{path} must be {expected}; got {got}")
            continue
        message = str(err.get("msg", "is not valid"))[:200]
        out.append(f"{path}: {message}; got {got}")
    hint = []
    for arg in dict.fromkeys(str(e.get("loc", ("",))[0]) for e in exc.errors()):
        desc = props.get(arg, {}).get("description")
        if desc:
            hint.append(f"{arg}: {desc}")
    return (
        "invalid arguments for "
        + tool
        + ": "
        + "; ".join(out)
        + (" (" + "; ".join(hint) + ")" if hint else "")
    )


def _caps(arguments: Mapping[str, Any]) -> str | None:
    for name, value in arguments.items():
        if isinstance(value, str) and len(value) > MAX_ARGUMENT_CHARS:
            return f"{name} is too long ({len(value)} chars); at most {MAX_ARGUMENT_CHARS}"
        if isinstance(value, list | dict) and len(value) > MAX_LIST_ITEMS:
            return f"{name} has {len(value)} items; at most {MAX_LIST_ITEMS}"
    return None


def not_found(uri: str, why: str) -> MCPError:
    short = uri if len(uri) <= MAX_URI_QUOTE else uri[:MAX_URI_QUOTE] + "…"
    return MCPError(
        code=t.INVALID_PARAMS,
        message=f"resource not found: {quote(uri)}; {why}",
        data={"uri": short},
    )


class CleanErrors(Middleware):
    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx

    async def on_call_tool(
        self,
        context: MiddlewareContext[t.CallToolRequestParams],
        call_next: CallNext[t.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        name = context.message.name
        server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
        tool = await server.get_tool(name) if server is not None else None
        if server is not None and tool is None:
            names = [x.name for x in await server.list_tools()]
            matches = close_matches(name[:MAX_NAME], names)
            hint = (
                f"did you mean {', '.join(matches)}?"
                if matches
                else "tools: " + ", ".join(sorted(names))
            )
            raise MCPError(
                code=t.INVALID_PARAMS,
                message=f"Unknown tool: {quote(name)}; {hint} (tools/list describes each).",
            )
        too_big = _caps(context.message.arguments or {})
        if too_big is not None:
            raise McpToolError(f"invalid arguments for {name}: {too_big}")
        try:
            return await call_next(context)
        except FastMCPValidationError as exc:
            cause = exc.__cause__
            if isinstance(cause, PydanticValidationError) and tool is not None:
                raise McpToolError(explain(name, cause, tool.parameters)) from None
            raise McpToolError(f"invalid arguments for {name}") from None

    async def on_read_resource(
        self,
        context: MiddlewareContext[t.ReadResourceRequestParams],
        call_next: CallNext[t.ReadResourceRequestParams, Any],
    ) -> Any:
        uri = str(context.message.uri)
        parsed = parse_uri(uri)
        if parsed is None:
            raise not_found(
                uri,
                "this server's URIs: tilt://status, tilt://resources, "
                "tilt://resources/{name}, tilt://resources/{name}/logs",
            )
        _, name = parsed
        if name is not None:
            store = self.ctx.store
            if len(name) > MAX_NAME:
                raise not_found(uri, f"a resource name is at most {MAX_NAME} characters")
            if name not in store.state.resources and not store.logs.line_count(name):
                known = set(store.state.resources) | (set(store.logs.resources()) - {""})
                raise not_found(uri, str(UnknownResource("resource", name, known)))
        return await call_next(context)

    async def on_get_prompt(
        self,
        context: MiddlewareContext[t.GetPromptRequestParams],
        call_next: CallNext[t.GetPromptRequestParams, Any],
    ) -> Any:
        args = context.message.arguments or {}
        name = args.get("resource")
        if isinstance(name, str):
            store = self.ctx.store
            if len(name) > MAX_NAME:
                raise MCPError(
                    code=t.INVALID_PARAMS,
                    message=f"resource={quote(name)} is too long: at most {MAX_NAME} characters",
                )
            if name not in store.state.resources and not store.logs.line_count(name):
                known = set(store.state.resources) | (set(store.logs.resources()) - {""})
                raise MCPError(
                    code=t.INVALID_PARAMS, message=str(UnknownResource("resource", name, known))
                )
        try:
            return await call_next(context)
        except FastMCPValidationError as exc:
            cause = exc.__cause__
            text = (
                explain(context.message.name, cause, {})
                if isinstance(cause, PydanticValidationError)
                else f"invalid arguments for prompt {quote(context.message.name)}"
            )
            raise MCPError(code=t.INVALID_PARAMS, message=text) from None


def install(mcp: FastMCP, ctx: BridgeContext) -> None:
    """Add :class:`CleanErrors` to the server (once)."""
    if not any(isinstance(m, CleanErrors) for m in mcp.middleware):
        mcp.add_middleware(CleanErrors(ctx))
