"""What every MCP handler needs: the store, the settings, Tilt's HTTP API, a clock."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from fastmcp.exceptions import ToolError as McpToolError

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


def model_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn our errors into MCP tool errors whose text is written for the model."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except BridgeError as exc:
            raise McpToolError(str(exc)) from exc

    return wrapper
