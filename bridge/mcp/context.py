"""What every MCP handler needs: which Tilt a call is about (its store and HTTP API), the
settings, a clock.

A bridge built around one store (``BridgeContext(store=…)``: tests, bench, ``assemble``)
serves that one Tilt. A bridge built around the registry (``instances=``) serves every
running Tilt and picks one per call:

* a tool's optional ``instance`` argument (a port or a Tiltfile folder name) names it;
* else the **session default**: the Tilt whose Tiltfile folder holds the client's
  workspace, its MCP roots when it offers them (asked once per session, again after
  ``notifications/roots/list_changed``), else the bridge's working directory;
* un-qualified resource URIs (``tilt://status``…) and the push pump use the **bridge
  default**: the same rule with the roots every session agrees on (a stdio bridge has
  one client, so its roots), else the working directory. Reads and pushes of a URI then
  always agree, whichever session asks.

A tool opts in with :meth:`BridgeContext.routed` (one line): it adds the ``instance``
argument and routes :attr:`BridgeContext.store` / :attr:`BridgeContext.http` for the
call.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, ParamSpec, TypeVar
from urllib.parse import unquote, urlparse

import anyio
import mcp_types as t
from fastmcp.exceptions import ToolError as McpToolError
from fastmcp.server.dependencies import get_context
from pydantic import BaseModel, Field

from bridge.control import Controller
from bridge.core.instances import Candidate, Choice, match_instance
from bridge.core.instances import quote as quote_instance
from bridge.errors import BridgeError, ToolError
from bridge.instances import Instances
from bridge.log import get_logger
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.client import TiltHTTP

P = ParamSpec("P")
R = TypeVar("R")

MAX_INSTANCE: Final = 256
"""An ``instance`` argument is a port or a folder name (an absolute path at most)."""
MAX_ROOTS: Final = 16
"""Roots looked at per session (the first with a Tilt decides)."""
MAX_SESSIONS: Final = 256
"""Sessions whose roots are remembered (the oldest is forgotten first)."""
ROOTS_TIMEOUT_S: Final = 2.0

InstanceArg = Annotated[str | None, Field(max_length=MAX_INSTANCE)]
"""Listed bare, ``{"type": "string"}``, on 13 tools: what it takes is said once, in
``list_instances``' description and the server's instructions (even a 14-character
description here costs 390 bytes of ``tools/list``, over the 5 KB a model reads)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The Tilt one call is about, and why it was chosen."""

    port: int
    store: Store
    http: TiltHTTP | None
    reason: str
    settled: bool = True


_ROUTED: contextvars.ContextVar[Target | None] = contextvars.ContextVar(
    "bridge_routed", default=None
)


class BridgeContext:
    __slots__ = ("_cwd", "_empty", "_http", "_roots", "_store", "clock", "instances", "settings")

    def __init__(
        self,
        store: Store | None = None,
        settings: Settings | None = None,
        http: TiltHTTP | None = None,
        clock: Callable[[], float] = time.time,
        *,
        instances: Instances | None = None,
        cwd: Callable[[], str] | None = None,
    ) -> None:
        if (store is None) == (instances is None):
            raise ValueError("BridgeContext serves one store or the registry of instances")
        self._store = store
        self._http = http
        self.settings = settings or Settings()
        self.clock = clock
        self.instances = instances
        self._cwd = cwd or (lambda: str(Path.cwd().resolve()))
        self._roots: dict[str, tuple[tuple[str, ...], str]] = {}
        self._empty = Store(log_budget_bytes=64 * 1024)

    # ------------------------------------------------------------------ the routed call

    @property
    def store(self) -> Store:
        """The store of the Tilt this call is about (a routed tool's ``instance``), else
        the bridge default's."""
        routed = _ROUTED.get()
        if routed is not None:
            return routed.store
        return self._store if self._store is not None else self.bridge_default().store

    @property
    def http(self) -> TiltHTTP | None:
        routed = _ROUTED.get()
        if routed is not None:
            return routed.http
        return self._http if self._store is not None else self.bridge_default().http

    def controller(self) -> Controller:
        """Writes to the Tilt this call is about (``ToolError`` if it has no HTTP API)."""
        http = self.http
        if http is None:
            raise ToolError("this bridge has no HTTP client for that Tilt; writes are off")
        return Controller(self.store, http)

    @property
    def target(self) -> Target:
        """The routed call's target (outside a routed call: the bridge default)."""
        return _ROUTED.get() or self.bridge_default()

    def routed(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Add the optional ``instance`` argument to a tool and route :attr:`store`,
        :attr:`http` and :attr:`target` to that Tilt (or the session default) for the
        call. Goes under ``@model_errors`` so a bad ``instance`` is a tool error."""

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            value = kwargs.pop("instance", None)
            target = await self.resolve(value if isinstance(value, str) else None)
            token = _ROUTED.set(target)
            try:
                return await fn(*args, **kwargs)
            finally:
                _ROUTED.reset(token)

        sig = inspect.signature(fn)
        param = inspect.Parameter(
            "instance", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=InstanceArg
        )
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[*sig.parameters.values(), param]
        )
        wrapper.__annotations__ = {**fn.__annotations__, "instance": InstanceArg}
        return wrapper

    # ------------------------------------------------------------------ choosing

    def candidates(self) -> list[Candidate]:
        if self.instances is not None:
            return self.instances.candidates()
        assert self._store is not None
        session = self._store.state.session
        return [Candidate(self.settings.port, session.tiltfile_key if session else None)]

    def store_of(self, port: int) -> Store | None:
        if self.instances is None:
            return self._store if port == self.settings.port else None
        instance = self.instances.get(port)
        return instance.store if instance is not None else None

    async def resolve(self, value: str | None) -> Target:
        """The Tilt an ``instance`` argument names, else the session default; a
        :class:`ToolError` written for the model when there is none."""
        if value is not None:
            port = match_instance(value, self.candidates())
            return self._target(port, f"instance={quote_instance(value)!r} was passed")
        if self.instances is None:
            return self._single()
        workspaces, source = await self.workspaces()
        return self._chosen(self.instances.default(workspaces, source))

    def bridge_default(self) -> Target:
        """The default for un-qualified URIs and the pump (never raises: with no Tilt to
        choose, the lowest port, or an empty store that says so)."""
        if self.instances is None:
            return self._single()
        choice = self.default_choice()
        try:
            return self._chosen(choice)
        except ToolError:
            ports = self.instances.ports
            if ports:
                return self._target(ports[0], choice.reason + f"; showing port {ports[0]}")
            return Target(0, self._empty, None, choice.reason, settled=False)

    def default_choice(self) -> Choice:
        """The bridge default's choice (see the module docstring)."""
        assert self.instances is not None
        shared = set(self._roots.values())
        if len(shared) == 1:
            workspaces, source = next(iter(shared))
        else:
            workspaces, source = (self._cwd(),), "the working directory"
        return self.instances.default(workspaces, source)

    def _single(self) -> Target:
        assert self._store is not None
        source = self.settings.port_source
        reason = f"{source} {self.settings.port} was given" if source else "the one Tilt served"
        return Target(self.settings.port, self._store, self._http, reason)

    def _chosen(self, choice: Choice) -> Target:
        if choice.port is None:
            raise ToolError(choice.reason)
        return self._target(choice.port, choice.reason, choice.settled)

    def target_on(self, port: int, reason: str) -> Target:
        """The Tilt on ``port`` (a qualified URI); ``ToolError`` naming the running ones."""
        if port not in [c.port for c in self.candidates()]:
            match_instance(str(port), self.candidates())  # raises, with the running ones
        return self._target(port, reason)

    def _target(self, port: int, reason: str, settled: bool = True) -> Target:
        if self.instances is None:
            assert self._store is not None
            return Target(port, self._store, self._http, reason, settled)
        instance = self.instances.get(port)
        if instance is None:
            raise ToolError(
                f"no Tilt is connected on port {port} ({reason}); list_instances shows "
                "the running ones"
            )
        return Target(port, instance.store, instance.http, reason, settled)

    # ------------------------------------------------------------------ workspaces

    async def workspaces(self) -> tuple[tuple[str, ...], str]:
        """The current session's workspace: its MCP roots (``file://`` ones, resolved),
        asked once and kept until the client says they changed; else the bridge's
        working directory."""
        fctx = _request_context()
        if fctx is not None:
            key = fctx.session_id
            cached = self._roots.get(key)
            if cached is not None:
                return cached
            roots = await _list_roots(fctx.session)
            # No roots, none offered, or no answer in time: the working directory, kept
            # like roots until the client says they changed (so a client that never
            # answers costs one timeout per session, not one per call).
            found: tuple[tuple[str, ...], str] = (
                (roots, "the MCP roots") if roots else ((self._cwd(),), "the working directory")
            )
            if len(self._roots) >= MAX_SESSIONS:
                del self._roots[next(iter(self._roots))]
            self._roots[key] = found
            return found
        return (self._cwd(),), "the working directory"

    def forget_roots(self, session_id: str | None = None) -> None:
        """The client's roots changed (``notifications/roots/list_changed``)."""
        if session_id is None:
            self._roots.clear()
        else:
            self._roots.pop(session_id, None)


def _request_context() -> Any:
    try:
        fctx = get_context()
    except RuntimeError:
        return None
    return fctx if fctx.request_context is not None else None


async def _list_roots(session: Any) -> tuple[str, ...] | None:
    """The client's ``file://`` roots as resolved paths; None if it offers no roots (or
    does not answer within :data:`ROOTS_TIMEOUT_S`)."""
    caps = session.client_capabilities
    if caps is None or caps.roots is None:
        return None
    result: t.ListRootsResult | None = None
    try:
        with anyio.move_on_after(ROOTS_TIMEOUT_S):
            # The typed request (ServerSession.list_roots is deprecated with the roots
            # capability in 2026-07-28; handshake-era clients still offer roots).
            result = await session.send_request(t.ListRootsRequest(), t.ListRootsResult)
    except Exception:  # a client that declares roots and fails to list them
        get_logger("bridge.mcp").debug("mcp.roots.failed", exc_info=True)
        return None
    if result is None:
        return None
    return roots_to_paths(str(r.uri) for r in result.roots[:MAX_ROOTS])


def roots_to_paths(uris: Sequence[str] | Any) -> tuple[str, ...]:
    """``file://`` root URIs → absolute, symlink-resolved paths (others ignored)."""
    out: list[str] = []
    for uri in uris:
        parsed = urlparse(uri[:4096])
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            continue
        path = unquote(parsed.path)
        if path.startswith("/") and "\x00" not in path:
            out.append(str(Path(path).resolve()))
    return tuple(out)


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
