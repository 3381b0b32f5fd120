"""Read-only MCP tools. All answer from the cache; none calls Tilt."""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field

from bridge.core import conditions, present
from bridge.mcp.context import BridgeContext, model_errors

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def schema(model: type[present.Compact]) -> dict[str, Any]:
    """The answer's schema, declared explicitly: tools return the model dumped without
    ``null`` fields (see ``model_errors``), so optional fields are simply absent."""
    return model.model_json_schema(mode="validation")


def register(mcp: FastMCP, ctx: BridgeContext) -> None:
    store = ctx.store

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.StatusOut))
    @model_errors
    async def get_status() -> present.StatusOut:
        """Tilt at a glance: version, connection, Tiltfile state, resource counts by state,
        and every failing or pending resource with its error in one line. Start here."""
        return present.status(store.state, store.logs, ctx.clock())

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.ResourceList))
    @model_errors
    async def list_resources(
        label: Annotated[str | None, Field(description="only resources with this label")] = None,
        status: Annotated[
            str | None,
            Field(description="only this state: " + ", ".join(conditions.STATES)),
        ] = None,
    ) -> present.ResourceList:
        """One compact row per resource: name, state, update/runtime status, labels, and
        why it is not ok. Filter by label or state."""
        return present.resource_rows(
            store.state, store.logs, ctx.clock(), label=label, status_filter=status
        )

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.ResourceDetail))
    @model_errors
    async def describe_resource(
        name: Annotated[str, Field(description="resource name, e.g. 'web'")],
        builds: Annotated[int, Field(ge=1, le=50, description="how many past builds")] = 5,
    ) -> present.ResourceDetail:
        """Everything about one resource: conditions, update/runtime status, current build,
        recent builds with errors and durations, what it waits on, trigger mode, disable
        state, endpoints, pid/pod, and its buttons."""
        return present.describe(store.state, store.logs, name, ctx.clock(), builds=builds)

    @mcp.tool(annotations=READ_ONLY, output_schema=schema(present.LogsOut))
    @model_errors
    async def get_logs(
        resource: Annotated[
            str | None,
            Field(description="resource name; omit for all resources interleaved"),
        ] = None,
        tail: Annotated[int, Field(ge=1, le=10_000, description="newest N lines")] = 100,
        since: Annotated[
            str | None,
            Field(description="only newer lines: a duration ('90s', '5m', '2h') or ISO time"),
        ] = None,
        level: Annotated[
            str | None, Field(description="minimum level: debug, info, warn, error")
        ] = None,
        source: Annotated[
            str | None, Field(description="build (update logs) or runtime (serve/pod logs)")
        ] = None,
        grep: Annotated[
            str | None,
            Field(description="regex (case-insensitive) applied before the tail"),
        ] = None,
        regex: Annotated[bool, Field(description="false: grep is plain text")] = True,
        context: Annotated[
            int, Field(ge=0, le=50, description="lines of context around each grep match")
        ] = 0,
        timestamps: Annotated[bool, Field(description="prefix lines with HH:MM:SS.mmm")] = True,
    ) -> present.LogsOut:
        """Log lines from the bridge's buffer (ANSI codes stripped). grep filters before the
        tail. Output is capped; when cut, `truncated` says how to get the rest."""
        return present.logs(
            store.state,
            store.logs,
            ctx.clock(),
            resource=resource,
            tail=tail,
            since=since,
            level=level,
            source=source,
            grep=grep,
            regex=regex,
            context=context,
            timestamps=timestamps,
        )
