"""The entry point's runtime: one task group owns the watcher, the push pump and the
MCP transport. Shutdown is cancellation (SIGTERM/SIGINT, or stdin closing)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import TextIO

import anyio
import structlog

from bridge import log as bridge_log
from bridge.core import present
from bridge.errors import BridgeError, FrameError, TiltError
from bridge.instance import open_instance
from bridge.lifecycle import Shutdown, release_memory
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.client import TiltHTTP
from bridge.tilt.stream import TiltSource
from bridge.tilt.view import decode_view

log = structlog.get_logger("bridge.app")


@asynccontextmanager
async def tilt_endpoint(settings: Settings) -> AsyncIterator[Settings]:
    """The Tilt to talk to: the configured one, or with ``--demo`` the built-in fake Tilt
    (imported only then: the demo pulls in an HTTP server)."""
    if not settings.demo:
        yield settings
        return
    from bridge.demo import demo_tilt

    async with demo_tilt(settings) as live:
        yield live


async def serve(settings: Settings) -> None:
    from bridge.mcp.app import run_mcp

    async with anyio.create_task_group() as tg:
        shutdown = Shutdown(tg.cancel_scope, grace_s=1.0 if settings.transport == "stdio" else 4.0)
        tg.start_soon(shutdown.on_signals)
        async with (
            tilt_endpoint(settings) as live,
            open_instance(live, after_big_frame=release_memory) as tilt,
            anyio.create_task_group() as inner,
        ):
            await inner.start(tilt.watcher.run)
            await run_mcp(live, tilt.store, tilt.http, inner, shutdown)
            inner.cancel_scope.cancel()
        tg.cancel_scope.cancel()


def run_serve(settings: Settings) -> int:
    bridge_log.configure(settings.log_level, settings.log_format)
    log.info(
        "bridge.starting",
        tilt=settings.tilt_base_url if not settings.demo else "demo",
        transport=settings.transport,
        read_only=settings.read_only,
    )
    try:
        anyio.run(serve, settings, backend="asyncio")
    except KeyboardInterrupt:
        pass
    except (BridgeError, BaseExceptionGroup) as exc:
        # A start-up error raised inside the task groups arrives wrapped in a group.
        error = _bridge_error(exc)
        if error is None:
            raise
        print(f"tilt-mcp-bridge: {error}", file=sys.stderr)
        return 2
    return 0


def _bridge_error(exc: BaseException) -> BridgeError | None:
    """The first :class:`BridgeError` in ``exc`` or the groups nested in it."""
    if isinstance(exc, BridgeError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _bridge_error(inner)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------------------- status


async def fetch_once(settings: Settings, timeout_s: float = 10.0) -> Store:
    """csrf → websocket → first complete view, applied to a fresh store."""
    store = Store(log_budget_bytes=settings.log_budget_bytes)
    http = TiltHTTP(settings.tilt_base_url, settings.token, timeout_s=timeout_s)
    try:
        source = TiltSource(
            http,
            settings.tilt_ws_url,
            max_frame_bytes=settings.max_frame_bytes,
            open_timeout_s=timeout_s,
        )
        with anyio.fail_after(timeout_s):
            csrf = await source.fetch_csrf()
            async with aclosing(source.open(csrf)) as frames:
                async for raw in frames:
                    store.apply_frame(decode_view(raw))
                    break
    finally:
        await http.aclose()
    return store


def format_table(store: Store, now: float) -> str:
    state = store.state
    st = present.status(state, store.logs, now)
    rows = present.resource_rows(state, store.logs, now).resources
    lines = [
        f"Tilt {st.tilt_version or '?'}: {st.resources} resources, "
        + ", ".join(f"{n} {k}" for k, n in st.counts.items())
        + (f"; Tiltfile {st.tiltfile}" if st.tiltfile != "ok" else ""),
        "",
    ]
    width = max([len(r.name) for r in rows] + [8])
    lines.append(f"{'RESOURCE':<{width}}  {'STATE':<9} {'UPDATE':<14} {'RUNTIME':<14} WHY")
    for r in rows:
        lines.append(
            f"{r.name:<{width}}  {r.state:<9} {r.update:<14} {r.runtime:<14} {r.why or ''}".rstrip()
        )
    if st.tiltfile_error:
        lines += ["", f"Tiltfile error: {st.tiltfile_error}"]
    return "\n".join(lines)


async def _status(settings: Settings, out: TextIO) -> int:
    async with tilt_endpoint(settings) as live:
        try:
            store = await fetch_once(live)
        except TimeoutError:
            print(
                f"tilt-mcp-bridge: no answer from Tilt at {live.tilt_base_url} within 10s",
                file=sys.stderr,
            )
            return 1
        except (TiltError, FrameError) as exc:
            print(f"tilt-mcp-bridge: {exc}", file=sys.stderr)
            return 1
    print(format_table(store, time.time()), file=out)
    return 0


def run_status(settings: Settings, out: TextIO | None = None) -> int:
    bridge_log.configure("warning", settings.log_format)
    return anyio.run(_status, settings, out or sys.stdout, backend="asyncio")


def dump_json(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))
