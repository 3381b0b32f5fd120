"""Answers, shared by the MCP layer and the CLI doctor: models (:mod:`.models`) and the
presenters that build them from the state (:mod:`.views`)."""

from bridge.core.present.models import (
    BuildOut,
    ButtonInputOut,
    ButtonOut,
    Compact,
    ConnectionOut,
    LogsOut,
    ProblemOut,
    ResourceDetail,
    ResourceList,
    ResourceRow,
    StatusOut,
)
from bridge.core.present.views import (
    MAX_ANSWER_BYTES,
    RESTART_MARKER,
    LogPlan,
    button_out,
    connection_out,
    describe,
    log_plan,
    logs,
    render_logs,
    resource_rows,
    status,
)

__all__ = [
    "MAX_ANSWER_BYTES",
    "RESTART_MARKER",
    "BuildOut",
    "ButtonInputOut",
    "ButtonOut",
    "Compact",
    "ConnectionOut",
    "LogPlan",
    "LogsOut",
    "ProblemOut",
    "ResourceDetail",
    "ResourceList",
    "ResourceRow",
    "StatusOut",
    "button_out",
    "connection_out",
    "describe",
    "log_plan",
    "logs",
    "render_logs",
    "resource_rows",
    "status",
]
