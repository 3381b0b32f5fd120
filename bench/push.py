"""Target 4: push latency, Tilt frame → client notification ≤ 10 ms p50 (stdio and HTTP).

A :class:`bridge.testing.FakeTilt` (in this process, 127.0.0.1) feeds a real
``python -m bridge`` subprocess. A client subscribes (handshake era,
``resources/subscribe``) to ``tilt://resources/{name}``; each round the fake sends a
one-resource delta that changes what that URI returns, and the figure is the time
from the start of :meth:`FakeTilt.send` to the client reading
``notifications/resources/updated`` for it. That includes the fake's own JSON +
websocket send and the loopback hop, so it slightly over-states "frame arrival →
notification".

* stdio: :class:`bench.rpc.StdioPeer` (raw JSON-RPC lines on the pipe);
* HTTP: a raw Streamable HTTP client (``httpx2``): POST ``initialize``, the standalone
  GET/SSE stream for notifications, POST ``resources/subscribe``.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc
import httpx2

from bench import synth
from bench.common import PYTHON, REPO, Config, Row, Section, child_env, median, ms, percentile
from bench.rpc import StdioPeer, open_log
from bridge.mcp.resources import RESOURCES_URI, STATUS_URI

TARGET_MS: Final = 10.0
UPDATED: Final = "notifications/resources/updated"
GAP_S: Final = 0.02  # between rounds, so rounds do not coalesce
DEADLINE_S: Final = 10.0
HTTP_PROTOCOL: Final = "2025-11-25"
BIG_RESOURCES: Final = 100

JSON = dict[str, Any]


def run(cfg: Config) -> Section:
    section = Section("push")
    rounds = cfg.repeat(150, 40)
    try:
        from bridge.mcp.notify import Pump  # noqa: F401
        from bridge.mcp.subscriptions import SubscriptionHub  # noqa: F401
        from bridge.testing import FakeTilt  # noqa: F401
    except ImportError as exc:
        section.rows.append(
            Row("push latency", f"not available yet ({exc})", f"≤ {TARGET_MS:g} ms p50", None)
        )
        return section
    cases = [
        ("stdio", False, rounds),
        ("http", False, rounds),
        ("stdio", True, max(20, rounds // 3)),
    ]
    for transport, big, n in cases:
        samples = anyio.run(_measure, transport, n, big, backend="asyncio")
        p50 = median(samples)
        what = (
            f"{BIG_RESOURCES} resources, also subscribed to {STATUS_URI} and {RESOURCES_URI}"
            if big
            else "the demo project (16 resources), one subscription"
        )
        section.rows.append(
            Row(
                f"push latency over {transport}, {what} ({len(samples)} rounds)",
                f"p50 {ms(p50)}, p99 {ms(percentile(samples, 99))}",
                f"≤ {TARGET_MS:g} ms p50",
                p50 <= TARGET_MS * 1e6,
            )
        )
    return section


@dataclass(slots=True)
class Watch:
    """Wakes the round waiting for ``uri``'s next update and stamps its arrival."""

    uri: str
    at_ns: int = 0
    event: anyio.Event = field(default_factory=anyio.Event)

    def arm(self) -> None:
        self.at_ns = 0
        self.event = anyio.Event()

    def seen(self, message: JSON, at_ns: int) -> None:
        if message.get("method") == UPDATED and message.get("params", {}).get("uri") == self.uri:
            if not self.at_ns:
                self.at_ns = at_ns
            self.event.set()


async def _measure(transport: str, rounds: int, big: bool) -> list[int]:
    from bridge.testing import FakeTilt

    initial = json.loads(synth.complete_view(BIG_RESOURCES)) if big else None
    extra = [STATUS_URI, RESOURCES_URI] if big else []
    async with FakeTilt(initial=initial) as tilt:
        name = _first_resource(tilt.view())
        watch = Watch(f"tilt://resources/{name}")
        env = child_env({"TILT_TOKEN": tilt.token or "", "BRIDGE_LOG_FORMAT": "json"})
        argv = [PYTHON, "-m", "bridge", "--host", "127.0.0.1", "--port", str(tilt.port)]
        with tempfile.TemporaryDirectory() as tmp:
            err = Path(tmp) / "err"
            if transport == "stdio":
                async with StdioPeer.spawn(argv, env=env, cwd=REPO, stderr=err) as peer:
                    peer.on_notification = lambda got: watch.seen(got.message, got.at_ns)
                    await peer.initialize()
                    await _wait_connected(lambda: peer.call_tool("get_status"))
                    for uri in [watch.uri, *extra]:
                        await peer.request("resources/subscribe", {"uri": uri})
                    return await _rounds(tilt, name, watch, rounds)
            port = _free_port()
            argv += ["--transport", "http", "--http-host", "127.0.0.1", "--http-port", str(port)]
            async with _process(argv, env, err), HttpPeer.connect(port, watch.seen) as client:
                await _wait_connected(client.health)
                for uri in [watch.uri, *extra]:
                    await client.request("resources/subscribe", {"uri": uri})
                return await _rounds(tilt, name, watch, rounds)


def _first_resource(view: dict[str, Any]) -> str:
    names: list[str] = sorted(r["metadata"]["name"] for r in view["uiResources"])
    return next(n for n in names if n != "(Tiltfile)")


async def _wait_connected(status: Callable[[], Awaitable[JSON]]) -> None:
    with anyio.fail_after(30):
        while True:
            st = await status()
            state = st["tilt"] if "tilt" in st else st["connection"]["state"]
            if state == "connected" and st["resources"]:
                return
            await anyio.sleep(0.05)


async def _rounds(tilt: Any, name: str, watch: Watch, rounds: int) -> list[int]:
    out: list[int] = []
    for i in range(rounds + 5):  # five warm-up rounds
        res = tilt.resource(name)
        res["metadata"]["resourceVersion"] = tilt.model.next_rv()
        res["status"]["lastDeployTime"] = f"2026-11-27T10:{i // 60 % 60:02d}:{i % 60:02d}.000000Z"
        watch.arm()
        t0 = time.perf_counter_ns()
        await tilt.send({"uiResources": [res]})
        with anyio.fail_after(DEADLINE_S):
            await watch.event.wait()
        if i >= 5:
            out.append(watch.at_ns - t0)
        await anyio.sleep(GAP_S)
    return out


# ---------------------------------------------------------------------------- HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _process(argv: list[str], env: dict[str, str], stderr: Path) -> AsyncIterator[None]:
    """A subprocess we own: SIGTERM on exit, SIGKILL if it lingers past 5 s."""
    err = await open_log(stderr)
    with err:
        process = await anyio.open_process(argv, env=env, cwd=REPO, stderr=err)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                process.terminate()
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()


class HttpPeer:
    """A raw handshake-era Streamable HTTP client with its standalone GET stream open."""

    def __init__(self, http: httpx2.AsyncClient, base: str, headers: dict[str, str]) -> None:
        self.http = http
        self.base = base
        self.url = base + "/mcp"
        self.headers = headers
        self._next_id = 1

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, port: int, on_message: Callable[[JSON, int], None]
    ) -> AsyncIterator[HttpPeer]:
        base = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(timeout=DEADLINE_S) as http:
            with anyio.fail_after(30):
                while True:
                    try:
                        if (await http.get(base + "/healthz")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    await anyio.sleep(0.05)
            peer = cls(http, base, {"accept": "application/json, text/event-stream"})
            init = await peer.request(
                "initialize",
                {
                    "protocolVersion": HTTP_PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "tilt-mcp-bridge-bench", "version": "0"},
                },
            )
            assert init.get("result"), init
            await peer.notify("notifications/initialized")
            async with anyio.create_task_group() as tg:
                await tg.start(peer._listen, on_message)
                try:
                    yield peer
                finally:
                    tg.cancel_scope.cancel()
            await http.delete(peer.url, headers=peer.headers)

    async def _listen(
        self,
        on_message: Callable[[JSON, int], None],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        headers = {**self.headers, "accept": "text/event-stream"}
        async with self.http.stream("GET", self.url, headers=headers, timeout=None) as stream:
            if stream.status_code != 200:
                raise RuntimeError(f"GET stream refused: {stream.status_code}")
            task_status.started()
            async for line in stream.aiter_lines():
                if line.startswith("data:") and line[5:].strip():
                    at = time.perf_counter_ns()
                    on_message(json.loads(line[5:]), at)

    async def notify(self, method: str) -> None:
        response = await self.http.post(
            self.url, json={"jsonrpc": "2.0", "method": method}, headers=self.headers
        )
        if response.status_code != 202:
            raise RuntimeError(f"{method}: HTTP {response.status_code} {response.text}")

    async def request(self, method: str, params: JSON) -> JSON:
        rid, self._next_id = self._next_id, self._next_id + 1
        message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        response = await self.http.post(self.url, json=message, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"{method}: HTTP {response.status_code} {response.text}")
        session = response.headers.get("mcp-session-id")
        if session and "mcp-session-id" not in self.headers:
            self.headers = {
                **self.headers,
                "mcp-session-id": session,
                "mcp-protocol-version": HTTP_PROTOCOL,
            }
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    reply: JSON = json.loads(line[5:])
                    if reply.get("id") == rid:
                        return _ok(method, reply)
            raise RuntimeError(f"{method}: no reply in the event stream")
        return _ok(method, response.json())

    async def health(self) -> JSON:
        result: JSON = (await self.http.get(self.base + "/healthz")).json()
        return result


def _ok(method: str, reply: JSON) -> JSON:
    if "error" in reply:
        raise RuntimeError(f"{method} failed: {reply['error']}")
    return reply


if __name__ == "__main__":
    for row in run(Config()).rows:
        print(row)
