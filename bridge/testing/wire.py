"""The fake Tilt's transport: HTTP/1.1 and websockets on one anyio TCP listener.

Protocol code is public sans-I/O only: ``h11`` parses HTTP, websockets'
:class:`~websockets.server.ServerProtocol` the handshake and frames. This module
owns every TCP connection, which is the point: a fake Tilt must misbehave in ways a
conforming server framework never does, so it can

* drop a connection with no close frame (:meth:`WireServer.abort`: clients see 1006),
* accept a websocket and then stop reading it, so pings and close frames go
  unanswered (:meth:`WebSocket.serve` with ``read=False``: a hung Tilt),
* stop listening (:meth:`WireServer.close`: connections refused) and listen again
  on the same port.

It knows nothing of Tilt: requests go to an :class:`HTTPHandler` and websockets to a
:class:`WebSocketHandler`. Backend-agnostic (asyncio or trio).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc
import h11
from anyio.abc import SocketAttribute
from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.http11 import Request as WSRequest
from websockets.http11 import Response as WSResponse
from websockets.server import ServerProtocol

__all__ = [
    "ConnectionGone",
    "HTTPHandler",
    "HTTPRequest",
    "HTTPResponse",
    "WebSocket",
    "WebSocketHandler",
    "WireServer",
]

_MAX_HEAD_BYTES: Final = 64 * 1024
_READ_BYTES: Final = 64 * 1024
_CLOSE_TIMEOUT_S: Final = 5.0
"""How long a graceful close waits for the client's end of the TCP connection."""

_Gone: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)


class ConnectionGone(Exception):
    """The client's connection is closed or closing: nothing more can be sent to it."""


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """One request (or websocket handshake). ``headers`` keys are lower-case; ``path``
    is percent-decoded, ``query`` is not."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""

    def cookie(self, name: str) -> str | None:
        """The value of cookie ``name``, parsed leniently like browsers send them."""
        for chunk in self.headers.get("cookie", "").split(";"):
            key, sep, value = chunk.partition("=")
            if sep and key.strip() == name:
                return value.strip().strip('"')
        return None


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """A whole response: status, body, its content type (None: no header) and more headers."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


HTTPHandler: TypeAlias = Callable[[HTTPRequest], Awaitable[HTTPResponse]]
WebSocketHandler: TypeAlias = Callable[["WebSocket"], Awaitable[None]]


def _make_request(method: str, target: str, headers: Mapping[str, str], body: bytes) -> HTTPRequest:
    parts = urlsplit(target)
    return HTTPRequest(method, unquote(parts.path), parts.query, headers, body)


class WebSocket:
    """A websocket handshake the handler answers: :meth:`accept` or :meth:`reject`,
    then :meth:`send_text` / :meth:`close` from any task while :meth:`serve` runs."""

    def __init__(
        self,
        stream: anyio.abc.SocketStream,
        protocol: ServerProtocol,
        accepted: WSResponse,
        request: HTTPRequest,
    ) -> None:
        self.request = request
        self._stream = stream
        self._protocol = protocol
        self._accepted = accepted
        self._write_lock = anyio.Lock()
        self._eof_sent = False

    async def accept(self) -> None:
        """Complete the handshake (101)."""
        self._protocol.send_response(self._accepted)
        await self._flush()

    async def reject(self, status: int, text: str) -> None:
        """Refuse the handshake with ``status`` and a text/plain body; the connection ends."""
        self._protocol.send_response(self._protocol.reject(status, text))
        await self._flush()

    async def send_text(self, text: str) -> None:
        """Send one text message; :class:`ConnectionGone` if the connection is closing."""
        try:
            self._protocol.send_text(text.encode())
        except InvalidState as exc:
            raise ConnectionGone(str(exc)) from exc
        await self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake with ``code``; :meth:`serve` finishes it."""
        try:
            self._protocol.send_close(code, reason)
        except InvalidState as exc:
            raise ConnectionGone(str(exc)) from exc
        await self._flush()

    async def serve(self, *, read: bool = True) -> None:
        """Run the connection until the client is gone, ignoring what it sends.

        Pings are answered and the closing handshake completed, like any server.
        ``read=False`` never reads again: no pong, no close reply, not even the client
        leaving is noticed. Only cancellation (:meth:`WireServer.abort`) ends it then.
        """
        if not read:
            await anyio.sleep_forever()
        while not self._eof_sent:
            try:
                data = await self._stream.receive(_READ_BYTES)
            except _Gone:
                self._protocol.receive_eof()
                return
            self._protocol.receive_data(data)
            self._protocol.events_received()  # Tilt ignores what clients send
            try:
                await self._flush()
            except ConnectionGone:
                return
        await _wait_for_eof(self._stream)

    async def _flush(self) -> None:
        async with self._write_lock:
            try:
                for chunk in self._protocol.data_to_send():
                    if chunk:
                        await self._stream.send(chunk)
                    else:  # the protocol's end of the TCP connection
                        self._eof_sent = True
                        await self._stream.send_eof()
            except _Gone as exc:
                raise ConnectionGone("the connection is closed") from exc


async def _wait_for_eof(stream: anyio.abc.SocketStream) -> None:
    """Read and discard until the peer closes its side, for at most a close timeout."""
    with anyio.move_on_after(_CLOSE_TIMEOUT_S):
        try:
            while True:
                await stream.receive(_READ_BYTES)
        except _Gone:
            return


@dataclass(eq=False)
class _Conn:
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    websocket: bool = False


class WireServer:
    """Serve ``http`` and ``websocket`` on ``host``; :meth:`listen` and :meth:`close`
    may alternate (a Tilt going down and coming back on the same port)."""

    def __init__(
        self,
        *,
        host: str,
        http: HTTPHandler,
        websocket: WebSocketHandler,
        max_message_bytes: int,
    ) -> None:
        self.host = host
        self._http = http
        self._websocket = websocket
        self._max_message_bytes = max_message_bytes
        self._conns: set[_Conn] = set()
        self._listening: tuple[anyio.CancelScope, anyio.Event] | None = None

    @property
    def listening(self) -> bool:
        return self._listening is not None

    async def listen(self, tg: anyio.abc.TaskGroup, port: int) -> int:
        """Listen on ``port`` (0: a free one) and serve connections in ``tg``; the port."""
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=port)
        bound: int = listener.extra(SocketAttribute.local_port)
        await tg.start(self._accept, listener, tg)
        return bound

    async def close(self) -> None:
        """Stop listening; new connections are refused once this returns."""
        if self._listening is None:
            return
        scope, closed = self._listening
        self._listening = None
        scope.cancel()
        await closed.wait()

    def abort(self, *, websockets_only: bool) -> list[anyio.Event]:
        """Drop connections with no goodbye (a websocket sees 1006); their end events."""
        dropped = [c for c in self._conns if c.websocket or not websockets_only]
        for conn in dropped:
            conn.scope.cancel()
        return [c.done for c in dropped]

    async def _accept(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        tg: anyio.abc.TaskGroup,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        closed = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._listening = (scope, closed)
                async with listener:  # closed when cancelled: connections refused
                    task_status.started()
                    await listener.serve(self._serve, tg)
        finally:
            closed.set()

    async def _serve(self, stream: anyio.abc.SocketStream) -> None:
        conn = _Conn()
        self._conns.add(conn)
        try:
            with conn.scope:
                head = await _read_head(stream)
                if _is_websocket_upgrade(head):
                    conn.websocket = True
                    await self._serve_websocket(stream, head)
                else:
                    await self._serve_http(stream, head)
        except (*_Gone, ConnectionGone):
            pass  # the client went away
        finally:
            self._conns.discard(conn)
            with anyio.CancelScope(shield=True):
                await stream.aclose()  # an abort: whatever was not sent yet is dropped
            conn.done.set()

    async def _serve_websocket(self, stream: anyio.abc.SocketStream, head: bytes) -> None:
        protocol = ServerProtocol(max_size=self._max_message_bytes)
        protocol.receive_data(head)
        events = protocol.events_received()
        handshake = events[0] if events else None
        if not isinstance(handshake, WSRequest):  # malformed: the protocol queued a 400
            await _send_all(stream, protocol)
            return
        # Validated like any server does before the application sees it (else 400/426).
        response = protocol.accept(handshake)
        if response.status_code != 101:
            protocol.send_response(response)
            await _send_all(stream, protocol)
            return
        request = _make_request("GET", handshake.path, _header_map(handshake.headers), b"")
        await self._websocket(WebSocket(stream, protocol, response, request))

    async def _serve_http(self, stream: anyio.abc.SocketStream, head: bytes) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)
        conn.receive_data(head)
        while True:
            try:
                event = await _next_event(conn, stream)
                if not isinstance(event, h11.Request):
                    return  # closed, or a protocol switch this server does not do
                body = bytearray()
                while not isinstance(part := await _next_event(conn, stream), h11.EndOfMessage):
                    if isinstance(part, h11.Data):
                        body += part.data
                headers: dict[str, str] = {}
                for name, value in event.headers:
                    headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
                method, target = event.method.decode("ascii"), event.target.decode("latin-1")
                request = _make_request(method, target, headers, bytes(body))
            except h11.RemoteProtocolError:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _respond(stream, conn, HTTPResponse(400, b"Bad Request\n"))
                return
            await _respond(stream, conn, await self._http(request), request.method)
            if conn.our_state is h11.MUST_CLOSE:
                await stream.send_eof()
                await _wait_for_eof(stream)
                return
            conn.start_next_cycle()


async def _read_head(stream: anyio.abc.SocketStream) -> bytes:
    """The bytes up to the end of the first request's head (or all there were)."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < _MAX_HEAD_BYTES:
        try:
            head += await stream.receive(_READ_BYTES)
        except anyio.EndOfStream:
            break
    return head


def _is_websocket_upgrade(head: bytes) -> bool:
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def _header_map(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.raw_items():
        out.setdefault(name.lower(), value)
    return out


async def _next_event(conn: h11.Connection, stream: anyio.abc.SocketStream) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            conn.receive_data(await stream.receive(_READ_BYTES))
        except anyio.EndOfStream:
            conn.receive_data(b"")


async def _respond(
    stream: anyio.abc.SocketStream, conn: h11.Connection, r: HTTPResponse, method: str = "GET"
) -> None:
    headers = [("content-length", str(len(r.body)))]
    if r.content_type is not None:
        headers.append(("content-type", r.content_type))
    headers += r.headers
    data = conn.send(h11.Response(status_code=r.status, headers=headers)) or b""
    if method != "HEAD":
        data += conn.send(h11.Data(data=r.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send(data)


async def _send_all(stream: anyio.abc.SocketStream, protocol: ServerProtocol) -> None:
    for chunk in protocol.data_to_send():
        if chunk:
            await stream.send(chunk)
        else:
            await stream.send_eof()
            await _wait_for_eof(stream)
            return
