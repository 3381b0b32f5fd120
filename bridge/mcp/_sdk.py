"""Every private or provisional fastmcp/mcp access in ``bridge``, and the start-up check.

Nothing else lives here. Each access says which public API is missing; when one appears
upstream, replace the access and delete its line from :func:`check_seams`.

============================================  ============================================
access                                        missing public API
============================================  ============================================
``FastMCP._mcp_server``                       a handle on the SDK low-level server, or a
                                              way to serve spec methods fastmcp lacks
                                              (``resources/subscribe``/``unsubscribe``,
                                              ``subscriptions/listen``): PrefectHQ/fastmcp
                                              #3641 (open; PR #3645 closed unmerged)
``Server.middleware`` (SDK low level)         a stable hook that sees every connection;
                                              the SDK marks the list provisional for 2.x
                                              minors (``TODO(L54)`` in
                                              ``mcp/server/lowlevel/server.py``)
``ServerSession._connection``                 the per-client ``Connection`` from a request
                                              context (``ServerRequestContext`` has no
                                              ``connection``; the SDK's ``Context`` has
                                              one but the runner does not build it yet)
``FastMCP.__state_store``                     a session-state store that does not import
(``_FastMCP__state_store``)                   ``key_value`` + beartype: fastmcp reads its
                                              per-session visibility rules on the first
                                              ``tools/list``/``call`` of every session,
                                              and ``session_state_store=`` still wraps
                                              any store in key_value's PydanticAdapter
============================================  ============================================

``check_seams`` looks at classes and attributes only (``hasattr``, ``inspect.signature``,
``isinstance``); it builds no SDK object. ``tests/test_sdk.py`` drives each access for real,
in both protocol eras, so ``pytest tests/test_sdk.py`` after an upgrade says which broke.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from fastmcp import FastMCP
from mcp.server.connection import Connection
from mcp.server.context import ServerMiddleware, ServerRequestContext
from mcp.server.lowlevel.server import Server as LowLevelServer
from mcp.server.session import ServerSession
from mcp.shared.dispatcher import Outbound
from mcp_types import ServerCapabilities
from pydantic import BaseModel

from bridge.errors import BridgeError

ParamsT = TypeVar("ParamsT", bound=BaseModel)
Handler = Callable[[ServerRequestContext[Any, Any], ParamsT], Awaitable[BaseModel]]

VERIFIED_WITH: Final = {"fastmcp": "4.2.3", "mcp": "2.3.0"}
"""The releases these seams were last verified against (``tests/test_sdk.py`` green)."""


class SeamBroken(BridgeError, RuntimeError):
    """A fastmcp/mcp internal the bridge relies on is gone or changed (after an upgrade)."""


# -- the accesses -------------------------------------------------------------------------


def _lowlevel(server: FastMCP[Any]) -> LowLevelServer[Any]:
    # PRIVATE `FastMCP._mcp_server`. Missing: a public handle on the low-level server (or a
    # way to add spec methods: `FastMCP.add_extension` refuses them, fastmcp middleware
    # cannot add methods). PrefectHQ/fastmcp #3641. fastmcp registers its own handlers
    # through this same attribute, so it is the seam fastmcp itself maintains.
    lowlevel = getattr(server, "_mcp_server", None)
    if not isinstance(lowlevel, LowLevelServer):
        raise SeamBroken(_message(["FastMCP._mcp_server is no longer the SDK's low-level Server"]))
    return lowlevel


def add_request_handler(
    server: FastMCP[Any], method: str, params_type: type[ParamsT], handler: Handler[ParamsT]
) -> None:
    """Serve ``method`` on ``server`` (public ``Server.add_request_handler``, private reach)."""
    _lowlevel(server).add_request_handler(method, params_type, handler)


def has_request_handler(server: FastMCP[Any], method: str) -> bool:
    return _lowlevel(server).get_request_handler(method) is not None


def capabilities(server: FastMCP[Any], protocol_version: str) -> ServerCapabilities:
    """What ``server`` advertises to a client of that protocol era."""
    # Missing in fastmcp: a public "capabilities for version X" (they are derived by the SDK
    # low-level server from its registered handlers).
    return _lowlevel(server).get_capabilities(protocol_version=protocol_version)


def add_outermost_middleware(server: FastMCP[Any], middleware: ServerMiddleware[Any]) -> None:
    """Run ``middleware`` before anything else on every inbound message of ``server``."""
    # PROVISIONAL `Server.middleware` (SDK TODO(L54): "signature and semantics may change in a
    # 2.x minor release"). Missing: a stable per-connection hook. Outermost, so it sees each
    # message before fastmcp's own middleware can refuse it.
    _lowlevel(server).middleware.insert(0, middleware)


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The per-client ``Connection`` a request came on: the only stable identity of a
    handshake-era client, with its standalone channel and its ``exit_stack``."""
    # PRIVATE `ServerSession._connection`. Missing: `ServerRequestContext.connection` (the
    # SDK's `Context` has one; its runner still hands handlers a `ServerRequestContext`).
    connection = getattr(ctx.session, "_connection", None)
    if not isinstance(connection, Connection):
        raise SeamBroken(_message(["ServerSession._connection is no longer the Connection"]))
    return connection


class LightStateStore:
    """fastmcp's session-state adapter (``get``/``put``/``delete`` by ``key``, with a
    ``ttl`` in seconds), in a dict: what ``PydanticAdapter`` over key_value's
    ``MemoryStore`` does, without importing them. That import (key_value, beartype) ran
    on the first ``tools/list`` or ``tools/call`` of a session: ~0.2-0.6 s of CPU and
    ~5 MiB of RSS, measured (bench/lean.py, /proc). Values make the same JSON round trip
    as the adapter's (a tuple comes back a list; what does not serialize raises
    pydantic's error); at most ``max_entries`` live entries, expired ones out first,
    then the oldest. The bridge itself stores nothing here (no ``ctx.set_state``, no
    per-session visibility); fastmcp only looks."""

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._data: dict[str, tuple[type[BaseModel], str, float | None]] = {}

    async def get(self, key: str, **_: Any) -> BaseModel | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        model, dumped, expires = entry
        if expires is not None and self._clock() >= expires:
            del self._data[key]
            return None
        return model.model_validate_json(dumped)

    async def put(self, key: str, value: BaseModel, *, ttl: float | None = None, **_: Any) -> None:
        dumped = value.model_dump_json()  # pydantic's error for what does not serialize
        self._data.pop(key, None)
        if len(self._data) >= self.max_entries:
            now = self._clock()
            for k in [
                k for k, (_m, _d, exp) in self._data.items() if exp is not None and now >= exp
            ]:
                del self._data[k]
        while len(self._data) >= self.max_entries:
            del self._data[next(iter(self._data))]
        expires = None if ttl is None else self._clock() + ttl
        self._data[key] = (type(value), dumped, expires)

    async def delete(self, key: str, **_: Any) -> bool:
        return self._data.pop(key, None) is not None

    def __len__(self) -> int:
        return len(self._data)


def install_light_state_store(server: FastMCP[Any]) -> LightStateStore:
    """Give ``server`` a :class:`LightStateStore` before its first request."""
    # PRIVATE name-mangled `FastMCP.__state_store`, the adapter `_state_store` builds
    # lazily. Missing: a way to give fastmcp a session-state store that is not wrapped
    # in key_value's PydanticAdapter (`session_state_store=` takes an AsyncKeyValue).
    store = LightStateStore()
    if "_FastMCP__state_store" not in vars(server):
        raise SeamBroken(_message(["FastMCP no longer keeps its state adapter in __state_store"]))
    setattr(server, "_FastMCP__state_store", store)  # noqa: B010 - a mangled private name
    return store


# -- the start-up check -------------------------------------------------------------------

_CONNECTION_ATTRIBUTES: Final = (
    "outbound",
    "exit_stack",
    "protocol_version",
    "initialized",
    "session_id",
    "has_standalone_channel",
)


def check_seams(server: FastMCP[Any] | None = None) -> None:
    """Raise ``SeamBroken`` naming every seam the installed fastmcp/mcp broke.

    Classes and signatures only; with ``server`` also its low-level server and middleware
    list (attributes of an object we built anyway, nothing is constructed here).
    """
    problems: list[str] = []
    if "_mcp_server" not in FastMCP.__init__.__code__.co_names:
        problems.append("FastMCP.__init__ no longer sets _mcp_server")
    for name, params in (
        ("add_request_handler", ("method", "params_type", "handler")),
        ("get_request_handler", ("method",)),
        ("get_capabilities", ("protocol_version",)),
    ):
        if not _has_params(LowLevelServer, name, params):
            problems.append(f"mcp low-level Server.{name} no longer takes {', '.join(params)}")
    if "middleware" not in LowLevelServer.__init__.__code__.co_names:
        problems.append("mcp low-level Server.__init__ no longer sets a middleware list")
    if not _has_params(ServerMiddleware, "__call__", ("ctx", "call_next")):
        problems.append("mcp ServerMiddleware is no longer called as (ctx, call_next)")
    if "session" not in {f.name for f in dataclasses.fields(ServerRequestContext)}:
        problems.append("mcp ServerRequestContext has no session field")
    if not _has_params(ServerSession, "__init__", ("connection",)) or (
        "_connection" not in ServerSession.__init__.__code__.co_names
    ):
        problems.append("mcp ServerSession no longer keeps its Connection as _connection")
    for attr in _CONNECTION_ATTRIBUTES:
        if attr not in Connection.__annotations__ and not hasattr(Connection, attr):
            problems.append(f"mcp Connection has no attribute {attr!r}")
    if Connection.__hash__ is not object.__hash__:
        problems.append("mcp Connection no longer hashes by identity (it is a dict key)")
    if not _has_params(Outbound, "notify", ("method", "params")):
        problems.append("mcp Outbound.notify no longer takes (method, params)")
    if "_FastMCP__state_store" not in FastMCP.__init__.__code__.co_names:
        problems.append("FastMCP.__init__ no longer sets its state adapter (__state_store)")
    if not isinstance(inspect.getattr_static(FastMCP, "_state_store", None), property):
        problems.append("FastMCP._state_store is no longer the lazy state-adapter property")
    if server is not None:
        lowlevel = getattr(server, "_mcp_server", None)
        if not isinstance(lowlevel, LowLevelServer):
            problems.append("FastMCP._mcp_server is no longer the SDK's low-level Server")
        elif not isinstance(getattr(lowlevel, "middleware", None), list):
            problems.append("the SDK low-level Server's middleware is no longer a list")
    if problems:
        raise SeamBroken(_message(problems))


def _has_params(cls: type, name: str, params: tuple[str, ...]) -> bool:
    fn = getattr(cls, name, None)
    if fn is None:
        return False
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(p in signature.parameters for p in params)


def _message(problems: list[str]) -> str:
    def installed(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    now = ", ".join(f"{d} {installed(d)}" for d in VERIFIED_WITH)
    pin = " ".join(f"{d}=={v}" for d, v in VERIFIED_WITH.items())
    return (
        "tilt-mcp-bridge cannot serve resource subscriptions with the installed "
        f"{now}: " + "; ".join(problems) + f". Pin {pin} (verified), or update "
        "bridge/mcp/_sdk.py and run tests/test_sdk.py."
    )
