"""What every MCP handler needs: the store, the settings, Tilt's HTTP API, a clock."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from fastmcp.exceptions import ToolError as McpToolError
from pydantic import BaseModel

from bridge.errors import BridgeError
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.client import TiltHTTP

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class BridgeContext:
    store: Store
    settings: Settings
    http: TiltHTTP | None = None
    clock: Callable[[], float] = field(default=time.time)


def model_errors(fn: Callable[P, Awaitable[BaseModel]]) -> Callable[P, Awaitable[dict[str, Any]]]:
    """Wrap a tool: our errors become MCP tool errors whose text is written for the model,
    and the result model becomes a compact dict (``null`` fields dropped, serialised by
    pydantic-core in one pass). The tool's output schema is passed to ``@mcp.tool``."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        try:
            result = await fn(*args, **kwargs)
        except BridgeError as exc:
            # The agent's mistake, answered to the agent: not a server error worth a
            # warning on stderr.
            raise McpToolError(str(exc), log_level=logging.INFO) from exc
        return result.model_dump(mode="json", exclude_none=True)

    # fastmcp reads the signature: it must announce the dict we really return.
    wrapper.__signature__ = inspect.signature(fn).replace(  # type: ignore[attr-defined]
        return_annotation=dict[str, Any]
    )
    wrapper.__annotations__ = {**fn.__annotations__, "return": dict[str, Any]}
    return wrapper
