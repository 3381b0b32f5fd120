"""MCP resources (JSON) and argument completion for ``{name}``.

URIs (also used by subscriptions, see :mod:`bridge.mcp.notify`):

* ``tilt://status``: the same as the ``get_status`` tool
* ``tilt://resources``: one row per resource
* ``tilt://resources/{name}``: one resource in detail
* ``tilt://resources/{name}/logs``: its newest log lines
* ``tilt://instances``: every Tilt the bridge serves (as ``list_instances``)
* ``tilt://instances/{port}/status``, ``…/resources``, ``…/resources/{name}``,
  ``…/resources/{name}/logs``: the same for the Tilt on that web port (the un-qualified
  forms address the bridge's default instance; why the port: :mod:`bridge.mcp.uris`)

Names are percent-encoded in every URI the bridge builds (:func:`resource_uri`; Tilt
allows ``#``, ``?`` and spaces in names) and decoded exactly once when a URI is read
(:func:`parse_uri`). Unknown names are answered by :mod:`bridge.mcp.errors` before a
handler runs.
"""

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
from bridge.mcp.context import BridgeContext, Target
from bridge.mcp.instances import instance_list, status

STATUS_URI: Final = "tilt://status"
RESOURCES_URI: Final = "tilt://resources"
RESOURCE_URI: Final = "tilt://resources/{name}"
LOGS_URI: Final = "tilt://resources/{name}/logs"
INSTANCES_URI: Final = "tilt://instances"
Q_STATUS_URI: Final = "tilt://instances/{port}/status"
Q_RESOURCES_URI: Final = "tilt://instances/{port}/resources"
Q_RESOURCE_URI: Final = "tilt://instances/{port}/resources/{name}"
Q_LOGS_URI: Final = "tilt://instances/{port}/resources/{name}/logs"
RESOURCE_LOG_LINES: Final = 200
JSON: Final = "application/json"


PREFIX: Final = "tilt://resources/"


def _encode(name: str) -> str:
    return quote(name, safe="")


def resource_uri(name: str) -> str:
    return PREFIX + _encode(name)


def logs_uri(name: str) -> str:
    return PREFIX + _encode(name) + "/logs"


def status_uri(port: int) -> str:
    return uris.qualify(STATUS_URI, port)


def parse_uri(uri: str) -> tuple[str, str | None] | None:
    """``(kind, name)`` for one of our URIs (kind: status, resources, resource, logs,
    instances; name decoded once), or None: the same rule subscriptions are checked with
    (:func:`bridge.mcp.uris.parse`). The name of an instance-qualified URI is not given
    (None): it is checked against that instance's store when read, not the default's."""
    try:
        parsed = uris.parse(uri)
    except uris.UriRefused:
        return None
    return parsed.kind, parsed.name if parsed.port is None else None


def _json(model: BaseModel) -> str:
    return model.model_dump_json(exclude_none=True)


def read_uri(ctx: BridgeContext, uri: str) -> str:
    """The content of any of our URIs (used by the handlers and to diff for updates)."""
    try:
        parsed = uris.parse(uri)
    except uris.UriRefused:
        raise ResourceError(f"unknown resource URI {quote_value(uri)}") from None
    return read_parsed(ctx, parsed)


def target_of(ctx: BridgeContext, port: int | None) -> Target:
    """The instance a URI addresses: the bridge default, or the Tilt on ``port``
    (``ToolError`` naming the running ones if none is connected there)."""
    if port is None:
        return ctx.bridge_default()
    return ctx.target_on(port, f"the URI names port {port}")


def read_parsed(ctx: BridgeContext, parsed: uris.BridgeUri) -> str:
    now = ctx.clock()
    if parsed.kind == "instances":
        default = ctx.bridge_default()
        return _json(instance_list(ctx, default if default.port else None, default.reason))
    target = target_of(ctx, parsed.port)
    store = target.store
    if parsed.kind == "status":
        return _json(status(ctx, target))
    if parsed.kind == "resources":
        return _json(present.resource_rows(store.state, store.logs, now))
    name = parsed.name
    assert name is not None
    if parsed.kind == "logs":
        return _json(
            present.logs(store.state, store.logs, now, resource=name, tail=RESOURCE_LOG_LINES)
        )
    return _json(present.describe(store.state, store.logs, name, now))


def _port(text: str) -> int:
    """A ``{port}`` as fastmcp hands it over (one decoded path segment)."""
    if not uris.PORT.fullmatch(text) or int(text) > 65535:
        raise ResourceError(
            f"{quote_value(text)} is not a web port (1-65535, no leading zero); "
            "list_instances shows the ports"
        )
    return int(text)


def register(mcp: FastMCP, ctx: BridgeContext) -> None:
    def read(uri: str) -> str:
        try:
            return read_uri(ctx, uri)
        except BridgeError as exc:
            raise ResourceError(str(exc)) from exc

    def read_at(kind: uris.Kind, port: str, name: str | None = None) -> str:
        try:
            return read_parsed(ctx, uris.BridgeUri(kind, name, _port(port)))
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

    if ctx.instances is not None:  # a one-store bridge serves only the un-qualified URIs

        @mcp.resource(INSTANCES_URI, name="instances", mime_type=JSON)
        async def instances() -> str:
            """Every Tilt this bridge serves: port, Tiltfile, counts, the default."""
            return read(INSTANCES_URI)

        @mcp.resource(Q_STATUS_URI, name="instance_status", mime_type=JSON)
        async def instance_status(port: str) -> str:
            """The Tilt on this web port at a glance."""
            return read_at("status", port)

        @mcp.resource(Q_RESOURCES_URI, name="instance_resources", mime_type=JSON)
        async def instance_resources(port: str) -> str:
            """One compact row per resource of the Tilt on this web port."""
            return read_at("resources", port)

        @mcp.resource(Q_RESOURCE_URI, name="instance_resource", mime_type=JSON)
        async def instance_resource(port: str, name: str) -> str:
            """One resource of the Tilt on this web port, in detail."""
            return read_at("resource", port, name)

        @mcp.resource(Q_LOGS_URI, name="instance_resource_logs", mime_type=JSON)
        async def instance_resource_logs(port: str, name: str) -> str:
            """The newest log lines of one resource of the Tilt on this web port."""
            return read_at("logs", port, name)

    @mcp.completion
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None = None,
    ) -> Completion | list[str]:
        """Complete resource names for ``{name}`` and every prompt's ``resource`` (of the
        instance ``{port}`` names, if given), and ``{port}`` by port or folder name."""
        prefix = argument.value[:MAX_NAME].lower()
        if argument.name == "port":
            ports = [
                str(c.port)
                for c in ctx.candidates()
                if str(c.port).startswith(prefix)
                or (c.folder is not None and c.folder.name.lower().startswith(prefix))
            ]
            return Completion(values=ports[:100], total=len(ports), has_more=len(ports) > 100)
        if argument.name not in ("name", "resource"):
            return []
        store = ctx.bridge_default().store
        port = (context.arguments or {}).get("port") if context is not None else None
        if port is not None:
            chosen = ctx.store_of(int(port)) if uris.PORT.fullmatch(port) else None
            if chosen is None:
                return []
            store = chosen
        names = [r.name for r in store.state.ordered()]
        starts = [n for n in names if n.lower().startswith(prefix)]
        contains = [n for n in names if prefix in n.lower() and n not in starts]
        matches = starts + contains
        return Completion(values=matches[:100], total=len(matches), has_more=len(matches) > 100)
