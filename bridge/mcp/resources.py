"""MCP resources (JSON) and argument completion for ``{name}``.

URIs (also used by subscriptions, see :mod:`bridge.mcp.notify`):

* ``tilt://status``: the same as the ``get_status`` tool
* ``tilt://resources``: one row per resource
* ``tilt://resources/{name}``: one resource in detail
* ``tilt://resources/{name}/logs``: its newest log lines

Names are percent-encoded in every URI the bridge builds (:func:`resource_uri`; Tilt
allows ``#``, ``?`` and spaces in names) and decoded exactly once when a URI is read
(:func:`parse_uri`). Unknown names are answered by :mod:`bridge.mcp.errors` before a
handler runs.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from fastmcp import FastMCP
from fastmcp.exceptions import ResourceError
from mcp_types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)
from pydantic import BaseModel

from bridge.core import present
from bridge.core.inputs import MAX_NAME
from bridge.core.inputs import quote as quote_value
from bridge.errors import BridgeError
from bridge.mcp import uris
from bridge.mcp.context import BridgeContext

STATUS_URI: Final = "tilt://status"
RESOURCES_URI: Final = "tilt://resources"
RESOURCE_URI: Final = "tilt://resources/{name}"
LOGS_URI: Final = "tilt://resources/{name}/logs"
RESOURCE_LOG_LINES: Final = 200
JSON: Final = "application/json"


PREFIX: Final = "tilt://resources/"


def _encode(name: str) -> str:
    return quote(name, safe="")


def resource_uri(name: str) -> str:
    return PREFIX + _encode(name)


def logs_uri(name: str) -> str:
    return PREFIX + _encode(name) + "/logs"


def parse_uri(uri: str) -> tuple[str, str | None] | None:
    """``(kind, name)`` for one of our URIs (kind: status, resources, resource, logs;
    name decoded once), or None: the same rule subscriptions are checked with
    (:func:`bridge.mcp.uris.parse`)."""
    try:
        parsed = uris.parse(uri)
    except uris.UriRefused:
        return None
    return parsed.kind, parsed.name


def _json(model: BaseModel) -> str:
    return model.model_dump_json(exclude_none=True)


def read_uri(ctx: BridgeContext, uri: str) -> str:
    """The content of any of our URIs (used by the handlers and to diff for updates)."""
    store = ctx.store
    now = ctx.clock()
    if uri == STATUS_URI:
        return _json(present.status(store.state, store.logs, now))
    if uri == RESOURCES_URI:
        return _json(present.resource_rows(store.state, store.logs, now))
    parsed = parse_uri(uri)
    name = parsed[1] if parsed is not None else None
    if parsed is not None and name is not None:
        kind = parsed[0]
        if kind == "logs":
            return _json(
                present.logs(store.state, store.logs, now, resource=name, tail=RESOURCE_LOG_LINES)
            )
        return _json(present.describe(store.state, store.logs, name, now))
    raise ResourceError(f"unknown resource URI {quote_value(uri)}")


def register(mcp: FastMCP, ctx: BridgeContext) -> None:
    def read(uri: str) -> str:
        try:
            return read_uri(ctx, uri)
        except BridgeError as exc:
            raise ResourceError(str(exc)) from exc

    @mcp.resource(STATUS_URI, name="status", mime_type=JSON)
    async def status() -> str:
        """Tilt at a glance: connection, Tiltfile, counts, problems."""
        return read(STATUS_URI)

    @mcp.resource(RESOURCES_URI, name="resources", mime_type=JSON)
    async def resources() -> str:
        """One compact row per resource."""
        return read(RESOURCES_URI)

    # fastmcp decodes {name} once; the handlers use it as it is (no URI round trip,
    # which would decode a second time: `web%2Flogs` must not read web's logs).
    @mcp.resource(RESOURCE_URI, name="resource", mime_type=JSON)
    async def resource(name: str) -> str:
        """One resource in detail: status, builds, buttons, endpoints."""
        try:
            return _json(present.describe(ctx.store.state, ctx.store.logs, name, ctx.clock()))
        except BridgeError as exc:
            raise ResourceError(str(exc)) from exc

    @mcp.resource(LOGS_URI, name="resource_logs", mime_type=JSON)
    async def resource_logs(name: str) -> str:
        """The newest log lines of one resource."""
        store = ctx.store
        try:
            out = present.logs(
                store.state, store.logs, ctx.clock(), resource=name, tail=RESOURCE_LOG_LINES
            )
        except BridgeError as exc:
            raise ResourceError(str(exc)) from exc
        return _json(out)

    @mcp.completion
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None = None,
    ) -> Completion | list[str]:
        """Complete resource names for ``{name}`` and every prompt's ``resource``."""
        if argument.name not in ("name", "resource"):
            return []
        prefix = argument.value[:MAX_NAME].lower()
        names = [r.name for r in ctx.store.state.ordered()]
        starts = [n for n in names if n.lower().startswith(prefix)]
        contains = [n for n in names if prefix in n.lower() and n not in starts]
        matches = starts + contains
        return Completion(values=matches[:100], total=len(matches), has_more=len(matches) > 100)
