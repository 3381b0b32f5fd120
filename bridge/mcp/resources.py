"""MCP resources (JSON) and argument completion for ``{name}``.

URIs (also used by subscriptions, see :mod:`bridge.mcp.notify`):

* ``tilt://status``: the same as the ``get_status`` tool
* ``tilt://resources``: one row per resource
* ``tilt://resources/{name}``: one resource in detail
* ``tilt://resources/{name}/logs``: its newest log lines
"""

from __future__ import annotations

from typing import Final

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
from bridge.errors import BridgeError
from bridge.mcp.context import BridgeContext

STATUS_URI: Final = "tilt://status"
RESOURCES_URI: Final = "tilt://resources"
RESOURCE_URI: Final = "tilt://resources/{name}"
LOGS_URI: Final = "tilt://resources/{name}/logs"
RESOURCE_LOG_LINES: Final = 200
JSON: Final = "application/json"


def resource_uri(name: str) -> str:
    return RESOURCE_URI.format(name=name)


def logs_uri(name: str) -> str:
    return LOGS_URI.format(name=name)


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
    prefix = "tilt://resources/"
    if uri.startswith(prefix):
        rest = uri[len(prefix) :]
        if rest.endswith("/logs"):
            name = rest[: -len("/logs")]
            return _json(
                present.logs(store.state, store.logs, now, resource=name, tail=RESOURCE_LOG_LINES)
            )
        return _json(present.describe(store.state, store.logs, rest, now))
    raise ResourceError(f"unknown resource URI {uri!r}")


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

    @mcp.resource(RESOURCE_URI, name="resource", mime_type=JSON)
    async def resource(name: str) -> str:
        """One resource in detail: status, builds, buttons, endpoints."""
        return read(resource_uri(name))

    @mcp.resource(LOGS_URI, name="resource_logs", mime_type=JSON)
    async def resource_logs(name: str) -> str:
        """The newest log lines of one resource."""
        return read(logs_uri(name))

    @mcp.completion
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None = None,
    ) -> Completion | list[str]:
        """Complete resource names for ``{name}`` and every prompt's ``resource``."""
        if argument.name not in ("name", "resource"):
            return []
        prefix = argument.value.lower()
        names = [r.name for r in ctx.store.state.ordered()]
        starts = [n for n in names if n.lower().startswith(prefix)]
        contains = [n for n in names if prefix in n.lower() and n not in starts]
        matches = starts + contains
        return Completion(values=matches[:100], total=len(matches), has_more=len(matches) > 100)
