"""One HTTP/1.1 exchange with h11 over an anyio TCP stream (:class:`~bridge.tilt.client.TiltHTTP`'s
transport). Imported on the first request, so start-up does not pay for h11."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import anyio
import h11

MAX_BODY_BYTES: Final = 256 * 1024 * 1024
"""The largest answer read (``/api/view`` of a big project is tens of MB); more is an error."""
MAX_HEAD_BYTES: Final = 64 * 1024
"""The largest status line + headers read."""


class NotHTTP(Exception):
    """The peer's answer broke HTTP/1.1. The message is h11's, about the *answer*."""


class TooBig(Exception):
    """The answer's body was over :data:`MAX_BODY_BYTES`."""


class Unsendable(Exception):
    """The request cannot be written as HTTP/1.1: a header value (the token) or the path
    holds a control or non-ASCII character. Says nothing of the value."""


async def exchange(
    host: str,
    port: int,
    host_header: str,
    method: str,
    path: str,
    content: bytes,
    headers: Mapping[str, str],
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (``Connection: close``), answered in full:
    (status, headers with lower-cased names, body). Socket errors are raised as they
    come (``OSError``); a peer that hangs up before answering or in the middle of its
    answer: ``ConnectionResetError``."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    try:
        out = _request_bytes(conn, host_header, method, path, content, headers)
    except (h11.LocalProtocolError, UnicodeError):
        # h11's message quotes the offending value, which may be the token: not one byte
        # of it goes further (``from None`` drops the quoting exception too)
        raise Unsendable("a header value or the path cannot be sent in HTTP/1.1") from None
    try:
        return await _exchange(conn, host, port, out)
    except h11.RemoteProtocolError as exc:
        raise NotHTTP(str(exc)) from exc


def _request_bytes(
    conn: h11.Connection,
    host_header: str,
    method: str,
    path: str,
    content: bytes,
    headers: Mapping[str, str],
) -> bytes:
    head = [
        ("Host", host_header),
        ("User-Agent", "tilt-mcp-bridge"),
        ("Accept", "*/*"),
        ("Connection", "close"),
        *headers.items(),
    ]
    if content or method in ("POST", "PUT", "PATCH"):
        head.append(("Content-Length", str(len(content))))
    out = conn.send(h11.Request(method=method, target=path, headers=head)) or b""
    if content:
        out += conn.send(h11.Data(data=content)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


async def _exchange(
    conn: h11.Connection, host: str, port: int, out: bytes
) -> tuple[int, dict[str, str], bytes]:
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(out)
        response: h11.Response | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = await stream.receive(65536)
                except anyio.EndOfStream:
                    chunk = b""
                if not chunk:
                    if response is None:
                        raise ConnectionResetError("closed before answering")
                    try:
                        conn.receive_data(b"")
                        event = conn.next_event()
                    except h11.RemoteProtocolError:
                        raise ConnectionResetError("closed in the middle of the answer") from None
                    if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                        break  # a body delimited by the end of the connection
                    continue
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY_BYTES:
                    raise TooBig(f"the answer is over {MAX_BODY_BYTES:,} bytes")
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    if response is None:  # pragma: no cover - h11 gives EndOfMessage only after a Response
        raise NotHTTP("no response before the end of the message")
    names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
    return response.status_code, names, bytes(body)
