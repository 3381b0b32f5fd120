"""The answer models: what tools, resources and the ``status`` command return.

Compact by default (``null`` fields are dropped when sent); detail is opt-in."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Compact(BaseModel):
    """Base of every answer model. Answers are sent with ``exclude_none``: every omitted
    ``null`` is a token saved (tools: :func:`bridge.mcp.context.model_errors`).

    ``defer_build``: pydantic builds a model's validator and serializer on its first use,
    not when the class is defined, so the ~20 answer models cost nothing before the first
    answer (the tools' schemas come from :mod:`bridge.mcp.schemas`, without building)."""

    model_config = ConfigDict(defer_build=True)


class ConnectionOut(Compact):
    state: str = Field(description="connected | connecting | disconnected | auth_failed")
    since: str | None = None
    url: str
    last_error: str | None = None


class ProblemOut(Compact):
    name: str
    state: str
    why: str


class StatusOut(Compact):
    tilt_version: str | None = None
    connection: ConnectionOut
    stale: str | None = Field(
        None, description="Set when Tilt is not connected: answers come from the last known state"
    )
    tiltfile: str = Field(description="ok | error | loading | not loaded")
    tiltfile_error: str | None = None
    resources: int
    counts: dict[str, int] = Field(description="resources per state")
    problems: list[ProblemOut] = Field(description="every resource in error, pending or waiting")


class ResourceRow(Compact):
    name: str
    state: str
    update: str
    runtime: str
    labels: list[str] | None = None
    why: str | None = None


class ResourceList(Compact):
    resources: list[ResourceRow]
    total: int
    stale: str | None = None


class BuildOut(Compact):
    start: str | None = None
    duration_s: float | None = None
    error: str | None = None
    warnings: list[str] | None = None
    crash_rebuild: bool | None = None


class ButtonInputOut(Compact):
    name: str
    type: str
    label: str | None = None
    default: str | bool | None = None
    choices: list[str] | None = None


class ButtonOut(Compact):
    name: str
    text: str
    location: str = Field(description="resource name, or 'global'")
    kind: str = Field(description="custom | disable-toggle | stop-build")
    inputs: list[ButtonInputOut] | None = None
    requires_confirmation: bool | None = None
    disabled: bool | None = None


class ResourceDetail(Compact):
    name: str
    state: str
    why: str | None = None
    update_status: str
    runtime_status: str
    conditions: dict[str, str] = Field(description="type -> status (reason)")
    trigger_mode: str
    disabled: bool
    labels: list[str]
    kinds: list[str] = Field(description="spec types: local, image, k8s, docker-compose")
    current_build: BuildOut | None = None
    pending_since: str | None = None
    queued: bool
    has_pending_changes: bool
    last_deploy: str | None = None
    builds: list[BuildOut] = Field(description="newest first")
    waiting_on: list[str] | None = None
    waiting_reason: str | None = None
    endpoints: list[str]
    pid: int | None = None
    pod: dict[str, str | int | bool] | None = None
    compose_health: str | None = None
    buttons: list[ButtonOut]
    stale: str | None = None


class LogsOut(Compact):
    resource: str = Field(description="resource name, or '(all)' interleaved")
    lines: list[str] = Field(
        description="oldest first; a line starting with ─── marks where Tilt restarted"
    )
    shown: int = Field(description="log lines shown (restart markers not counted)")
    truncated: str | None = Field(
        None, description="Set when lines were cut; says how to ask for more"
    )
    stale: str | None = None
