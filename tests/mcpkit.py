"""MCP client-side helpers for tests: an inbox for notifications, subscribe requests, a
real uvicorn serving a FastMCP app, and a raw JSON-RPC client over Streamable HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as t
import uvicorn
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport

DEADLINE_S = 10.0

# A handshake-era initialize over raw Streamable HTTP, and the Accept header it needs.
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
ACCEPT = {"accept": "application/json, text/event-stream"}


class Inbox:
    """A client's message handler: keeps every server notification, wakes waiters."""

    def __init__(self) -> None:
        self.messages: list[t.ServerNotification] = []
        self._changed = anyio.Event()

    async def __call__(self, message: t.ServerNotification | Exception) -> None:
        if isinstance(message, Exception):
            raise message
        self.messages.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    def updated(self) -> list[str]:
        return [m.params.uri for m in self.messages if isinstance(m, t.ResourceUpdatedNotification)]

    def list_changed(self) -> int:
        return sum(isinstance(m, t.ResourceListChangedNotification) for m in self.messages)

    async def wait_for(self, predicate: Callable[[Inbox], bool]) -> None:
        while not predicate(self):
            await self._changed.wait()


async def subscribe(client: Client[Any], uri: str) -> None:
    # The typed request, not ClientSession.subscribe_resource: that helper is deprecated
    # (MCPDeprecationWarning, an error under our filterwarnings) because 2026-07-28 removed
    # the method, but handshake-era clients (VS Code, Inspector) still send exactly this.
    await client.session.send_request(
        t.SubscribeRequest(params=t.SubscribeRequestParams(uri=uri)), t.EmptyResult
    )


async def unsubscribe(client: Client[Any], uri: str) -> None:
    await client.session.send_request(
        t.UnsubscribeRequest(params=t.UnsubscribeRequestParams(uri=uri)), t.EmptyResult
    )


def http(url: str) -> StreamableHttpTransport:
    # Plain http on loopback: skip building a TLS context per client (~60 ms of CPU each,
    # which dominated the 50-session test).
    return StreamableHttpTransport(url, verify=False)


# -- helpers: a real uvicorn, a raw JSON-RPC client ----------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGI = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


class HttpServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.get_streams = 0
        self._changed = anyio.Event()

    def wrap(self, app: ASGI) -> ASGI:
        """Count standalone GET streams opened: a notification is only delivered once the
        session's GET stream exists (the SDK keeps no backlog without an event store), and
        the server registers the stream in the same event-loop turn it starts the response."""

        async def counting(scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["method"] != "GET":
                await app(scope, receive, send)
                return

            async def watch(message: Message) -> None:
                await send(message)
                if message["type"] == "http.response.start" and message["status"] == 200:
                    self.get_streams += 1
                    self._changed.set()
                    self._changed = anyio.Event()

            await app(scope, receive, watch)

        return counting

    async def wait_get_streams(self, n: int) -> None:
        while self.get_streams < n:
            await self._changed.wait()


@asynccontextmanager
async def serve_http(mcp: FastMCP, *, stateless: bool = False) -> AsyncIterator[HttpServer]:
    """uvicorn on 127.0.0.1:0 serving fastmcp's Streamable HTTP app — stateful unless told."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = HttpServer(f"http://127.0.0.1:{port}/mcp")
    app = mcp.http_app(path="/mcp", stateless_http=stateless, json_response=False)
    config = uvicorn.Config(
        server.wrap(app),
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    uv = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(uv.serve, [sock])
        try:
            yield server
        finally:
            uv.should_exit = True
    sock.close()


class RawHttpClient:
    """A hand-written handshake-era client (what Claude Code speaks): it can declare
    ``experimental`` capabilities, which the SDK client cannot."""

    def __init__(self, http: httpx2.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.http = http
        self.url = url
        self.headers = headers
        self._lines: AsyncIterator[str] | None = None

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str, *, experimental: dict[str, dict[str, Any]] | None
    ) -> AsyncIterator[RawHttpClient]:
        accept = ACCEPT
        async with httpx2.AsyncClient(timeout=DEADLINE_S) as http:
            capabilities: dict[str, Any] = {}
            if experimental is not None:
                capabilities["experimental"] = experimental
            init = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": capabilities,
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
            response = await http.post(url, json=init, headers=accept)
            assert response.status_code == 200, response.text
            headers = {
                "mcp-session-id": response.headers["mcp-session-id"],
                "mcp-protocol-version": "2025-11-25",
            }
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            response = await http.post(url, json=initialized, headers={**accept, **headers})
            assert response.status_code == 202, response.text
            client = cls(http, url, headers)
            async with http.stream(
                "GET", url, headers={"accept": "text/event-stream", **headers}
            ) as stream:
                assert stream.status_code == 200
                client._lines = stream.aiter_lines()
                yield client
            await http.delete(url, headers=headers)

    async def call(self, id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One JSON-RPC request on POST; the answer may come as JSON or as an SSE event."""
        body = {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}
        accept = {"accept": "application/json, text/event-stream"}
        response = await self.http.post(self.url, json=body, headers={**accept, **self.headers})
        assert response.status_code == 200, response.text
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    message: dict[str, Any] = json.loads(line[5:])
                    if message.get("id") == id_:
                        return message
            raise AssertionError(f"no answer to {method} in {response.text!r}")
        answer: dict[str, Any] = response.json()
        return answer

    async def read_until(self, method: str) -> list[dict[str, Any]]:
        """Messages from the GET stream up to and including the first ``method``."""
        assert self._lines is not None
        seen: list[dict[str, Any]] = []
        async for line in self._lines:
            if line.startswith("data:") and line[5:].strip():
                message = json.loads(line[5:])
                seen.append(message)
                if message.get("method") == method:
                    return seen
        raise AssertionError(f"GET stream ended before {method}; saw {seen}")
