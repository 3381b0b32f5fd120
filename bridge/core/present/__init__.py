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
    button_out,
    connection_out,
    describe,
    logs,
    resource_rows,
    status,
)

__all__ = [
    "BuildOut",
    "ButtonInputOut",
    "ButtonOut",
    "Compact",
    "ConnectionOut",
    "LogsOut",
    "ProblemOut",
    "ResourceDetail",
    "ResourceList",
    "ResourceRow",
    "StatusOut",
    "button_out",
    "connection_out",
    "describe",
    "logs",
    "resource_rows",
    "status",
]
