"""Test harness: the real watcher + HTTP client against a FakeTilt on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import anyio
import anyio.abc
from anyio.abc import SocketStream

from bridge.core.backoff import BackoffPolicy
from bridge.core.state import State
from bridge.settings import Settings, TokenSource
from bridge.store import Store
from bridge.testing import FakeTilt
from bridge.tilt.client import TiltHTTP
from bridge.tilt.stream import TiltSource
from bridge.watcher import Watcher

FAST = BackoffPolicy(initial=0.02, factor=2.0, maximum=0.2, jitter=0.0, after_live=0.01)


@dataclass
class Stack:
    tilt: FakeTilt
    store: Store
    http: TiltHTTP
    watcher: Watcher
    settings: Settings

    async def until(self, predicate: Callable[[State], bool], within_s: float = 10.0) -> State:
        """Wait (without polling) until the store's state satisfies ``predicate``."""
        with anyio.fail_after(within_s):
            while not predicate(self.store.state):
                await self.store.wait_changed(self.store.version)
        return self.store.state

    async def connected(self, n: int = 1, within_s: float = 10.0) -> State:
        return await self.until(
            lambda s: s.connection.connections >= n and s.connection.connected and s.loaded,
            within_s,
        )


def settings_for(tilt: FakeTilt, token: str | None = None, **kw: object) -> Settings:
    tok = tilt.token if token is None else token
    base = Settings(
        host="127.0.0.1", port=tilt.port, token=TokenSource(env_value=tok) if tok else TokenSource()
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@asynccontextmanager
async def stack(
    tilt: FakeTilt,
    *,
    token: str | None = None,
    token_source: TokenSource | None = None,
    policy: BackoffPolicy = FAST,
    ping_interval_s: float | None = 20.0,
    ping_timeout_s: float | None = 20.0,
    first_frame_timeout_s: float = 5.0,
    max_frame_bytes: int = 64 * 1024 * 1024,
    log_budget_bytes: int = 32 * 1024 * 1024,
) -> AsyncIterator[Stack]:
    settings = settings_for(tilt, token)
    if token_source is not None:
        settings = replace(settings, token=token_source)
    store = Store(log_budget_bytes=log_budget_bytes)
    http = TiltHTTP(settings.tilt_base_url, settings.token, timeout_s=5)
    source = TiltSource(
        http,
        settings.tilt_ws_url,
        max_frame_bytes=max_frame_bytes,
        open_timeout_s=5,
        ping_interval_s=ping_interval_s,
        ping_timeout_s=ping_timeout_s,
        first_frame_timeout_s=first_frame_timeout_s,
    )
    watcher = Watcher(store, source, url=settings.tilt_ws_url, policy=policy)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(watcher.run)
            yield Stack(tilt, store, http, watcher, settings)
            tg.cancel_scope.cancel()
    finally:
        await http.aclose()


@asynccontextmanager
async def raw_server(answer: Callable[[SocketStream], Awaitable[None]]) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that reads the request head and runs ``answer``."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            head = b""
            with anyio.move_on_after(5):
                while b"\r\n\r\n" not in head:
                    head += await stream.receive()
            await answer(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()
