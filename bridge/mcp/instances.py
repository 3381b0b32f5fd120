"""Several Tilts: the ``list_instances`` tool, the ``instance`` block of ``get_status``,
and ``tilt://instances`` (the same answer as a resource)."""

from fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field

from bridge.core import present
from bridge.core.present import Compact
from bridge.errors import BridgeError
from bridge.mcp import schemas
from bridge.mcp.context import BridgeContext, Target, model_errors


class InstanceOut(Compact):
    """Which Tilt an answer is about, and why (``get_status``)."""

    port: int
    tiltfile: str | None = None
    why: str
    settled: bool | None = Field(
        None, description="false: a Tilt's Tiltfile is not known yet; the default may change"
    )
    others: int | None = Field(None, description="other Tilts running: see list_instances")


class StatusWithInstance(present.StatusOut):
    instance: InstanceOut | None = None


class InstanceRow(Compact):
    port: int
    tiltfile: str | None = Field(None, description="its Tiltfile; unknown until it first answers")
    version: str | None = None
    connection: str = Field(description="connected | connecting | disconnected | auth_failed")
    connected: bool
    resources: int
    counts: dict[str, int] = Field(description="resources per state")
    default: bool = Field(description="the one used when a call passes no instance")


class InstanceList(Compact):
    instances: list[InstanceRow]
    default: int | None = Field(None, description="the default instance's port")
    why: str = Field(description="why that one is the default")
    problem: str | None = Field(None, description="why Tilt's config file lists no Tilt")
    not_watched: list[int] | None = Field(
        None, description="listed Tilts over the bridge's limit (not connected)"
    )


def instance_out(ctx: BridgeContext, target: Target) -> InstanceOut:
    session = target.store.state.session
    others = len([c for c in ctx.candidates() if c.port != target.port])
    return InstanceOut(
        port=target.port,
        tiltfile=(session.tiltfile_key or None) if session else None,
        why=target.reason,
        settled=None if target.settled else False,
        others=others or None,
    )


def status(ctx: BridgeContext, target: Target) -> present.StatusOut:
    """``get_status`` for ``target``: with the instance block when the bridge serves
    several Tilts (a one-Tilt bridge answers exactly as before)."""
    base = present.status(target.store.state, target.store.logs, ctx.clock())
    if ctx.instances is None:
        return base
    return StatusWithInstance(**dict(base), instance=instance_out(ctx, target))


def instance_list(ctx: BridgeContext, default: Target | None, why: str) -> InstanceList:
    rows = []
    now = ctx.clock()
    for candidate in ctx.candidates():
        store = ctx.store_of(candidate.port)
        if store is None:
            continue
        st = present.status(store.state, store.logs, now)
        rows.append(
            InstanceRow(
                port=candidate.port,
                tiltfile=candidate.tiltfile,
                version=st.tilt_version,
                connection=st.connection.state,
                connected=st.connection.state == "connected",
                resources=st.resources,
                counts=st.counts,
                default=default is not None and default.port == candidate.port,
            )
        )
    problem = not_watched = None
    if ctx.instances is not None:
        found = ctx.instances.found
        problem = found.problem if not found.ports else None
        over = sorted(found.ports - set(ctx.instances.ports))
        not_watched = over or None
    return InstanceList(
        instances=rows,
        default=default.port if default is not None else None,
        why=why,
        problem=problem,
        not_watched=not_watched,
    )


def register(mcp: FastMCP, ctx: BridgeContext) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        output_schema=schemas.schema(InstanceList, depth=schemas.OUTPUT_DEPTH),
    )
    @model_errors
    async def list_instances() -> InstanceList:
        """Every Tilt served (port, Tiltfile, connection, counts) and the default. Any
        tool's `instance`: a port or Tiltfile folder name."""
        try:
            target: Target | None = await ctx.resolve(None)
            why = target.reason if target is not None else ""
        except BridgeError as exc:  # no default can be chosen: say why, list them anyway
            target, why = None, str(exc)
        return instance_list(ctx, target, why)
