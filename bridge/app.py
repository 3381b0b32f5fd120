"""The entry point's runtime: one task group owns discovery (Tilt's config file), the
registry of instances (one watcher and store per Tilt), the push pump and the MCP
transport. Shutdown is cancellation (SIGTERM/SIGINT, or stdin closing)."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import anyio

from bridge import log as bridge_log
from bridge.core import present
from bridge.core.instances import Candidate, parse_config, select
from bridge.discovery import Discovery
from bridge.errors import BridgeError, FrameError, TiltError
from bridge.instance import Instance, open_instance
from bridge.instances import Instances
from bridge.lifecycle import Shutdown, StartGate, release_memory
from bridge.log import get_logger
from bridge.settings import Settings
from bridge.store import Store
from bridge.tilt.client import TiltHTTP
from bridge.tilt.stream import TiltSource
from bridge.tilt.view import decode_view

log = get_logger("bridge.app")


@asynccontextmanager
async def tilt_endpoints(settings: Settings) -> AsyncIterator[tuple[Settings, list[int]]]:
    """The settings to serve with and the ports served whatever the config file says
    (the demo's fakes; else none)."""
    if not settings.demo:
        yield settings, []
        return
    from bridge.demo import demo_tilts

    async with demo_tilts(settings) as (live, ports):
        yield live, ports


def registry_for(live: Settings, pinned: list[int], gate: StartGate | None = None) -> Instances:
    """The registry: an explicit ``--port``/``TILT_PORT`` is pinned and wins the
    default; without one, Tilt's default port is watched while the config lists none.
    Watchers make their first connection once ``gate`` is open."""

    def opener(settings: Settings) -> AbstractAsyncContextManager[Instance]:
        return open_instance(settings, after_big_frame=release_memory, gate=gate)

    explicit = live.explicit_port
    return Instances(
        live,
        pinned=pinned,
        explicit_port=explicit,
        explicit_source=live.port_source or "--port",
        opener=opener,
        fallback_port=live.port if explicit is None and not pinned else None,
    )


async def serve(settings: Settings) -> None:
    from bridge.mcp.app import run_mcp

    async with anyio.create_task_group() as tg:
        shutdown = Shutdown(tg.cancel_scope, grace_s=1.0 if settings.transport == "stdio" else 4.0)
        tg.start_soon(shutdown.on_signals)
        gate = StartGate(settings.handshake_wait_s if settings.transport == "stdio" else 0)
        async with tilt_endpoints(settings) as (live, pinned), anyio.create_task_group() as inner:
            registry = registry_for(live, pinned, gate)
            discovery = None
            if not live.demo and live.tilt_config is not None:
                discovery = Discovery(live.tilt_config)
                await inner.start(discovery.run)
            await inner.start(registry.run, discovery)
            await run_mcp(live, registry, inner, shutdown, gate)
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
    """One table per Tilt: the config file read once, plus an explicit port; the
    default marked with its reason. One Tilt prints exactly the one table."""
    async with tilt_endpoints(settings) as (live, pinned):
        ports = status_ports(live, pinned)
        results: dict[int, Store | str] = {}

        async def one(port: int) -> None:
            results[port] = await _fetch_or_error(replace(live, port=port))

        async with anyio.create_task_group() as tg:
            for port in ports:
                tg.start_soon(one, port)
    if len(ports) == 1:
        result = results[ports[0]]
        if isinstance(result, str):
            print(f"tilt-mcp-bridge: {result}", file=sys.stderr)
            return 1
        print(format_table(result, time.time()), file=out)
        return 0
    candidates = [
        Candidate(p, r.state.session.tiltfile_key or None)
        if isinstance(r, Store) and r.state.session
        else Candidate(p)
        for p, r in sorted(results.items())
    ]
    choice = select(
        candidates,
        explicit_port=live.explicit_port,
        explicit_source=live.port_source or "--port",
        workspaces=[str(Path.cwd().resolve())],
    )
    sections = []
    for candidate in candidates:
        result = results[candidate.port]
        mark = f"  [default: {choice.reason}]" if candidate.port == choice.port else ""
        head = f"== port {candidate.port}: {candidate.tiltfile or 'Tiltfile unknown'}{mark}"
        body = result if isinstance(result, str) else format_table(result, time.time())
        sections.append(f"{head}\n{body}")
    if choice.port is None:
        sections.append(f"no default: {choice.reason}")
    print("\n\n".join(sections), file=out)
    return 1 if choice.port is None or isinstance(results.get(choice.port), str) else 0


def status_ports(live: Settings, pinned: list[int]) -> list[int]:
    """The Tilts ``status`` shows: the demo's, or the config's plus an explicit port;
    with none, the one ``--port`` names (Tilt's default port unless given)."""
    if pinned:
        return sorted(pinned)
    ports: set[int] = set()
    if live.tilt_config is not None:
        try:
            ports = set(parse_config(live.tilt_config.read_bytes()[: 1024 * 1024 + 1]).ports)
        except OSError:
            ports = set()
    if live.explicit_port is not None:
        ports.add(live.explicit_port)
    return sorted(ports) or [live.port]


async def _fetch_or_error(settings: Settings) -> Store | str:
    try:
        return await fetch_once(settings)
    except TimeoutError:
        return f"no answer from Tilt at {settings.tilt_base_url} within 10s"
    except (TiltError, FrameError) as exc:
        return str(exc)


def run_status(settings: Settings, out: TextIO | None = None) -> int:
    bridge_log.configure("warning", settings.log_format)
    return anyio.run(_status, settings, out or sys.stdout, backend="asyncio")
