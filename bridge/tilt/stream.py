"""The ``/ws/view`` websocket: the only module that imports ``websockets``.

:class:`TiltSource` is what the watcher needs from Tilt (a csrf, then a stream
of text frames). It translates every websockets/OS exception into
:mod:`bridge.errors` at this one boundary.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Final, Protocol
from urllib.parse import quote

import anyio

from bridge.errors import TiltAuthError, TiltError, TiltUnreachable
from bridge.tilt.client import TiltHTTP

CLOSE_TIMEOUT_S: Final = 2.0


class ViewSource(Protocol):
    """The seam between the watcher and Tilt; tests pass their own."""

    async def fetch_csrf(self) -> str: ...

    def open(self, csrf: str) -> AsyncGenerator[str, None]:
        """Connect and yield text frames until the connection ends (raise on failure).
        The caller closes it with ``contextlib.aclosing``."""
        ...

    def reload_token(self) -> None: ...


class StreamClosed(TiltError):
    """The websocket ended; ``code`` is 1006 when Tilt vanished without a close frame."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class TiltSource:
    """The real thing: csrf over HTTP, frames over ``ws://host:port/ws/view``."""

    def __init__(
        self,
        http: TiltHTTP,
        ws_url: str,
        *,
        max_frame_bytes: int,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        first_frame_timeout_s: float = 10.0,
    ) -> None:
        self.http = http
        self.ws_url = ws_url
        self.max_frame_bytes = max_frame_bytes
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.first_frame_timeout_s = first_frame_timeout_s

    async def fetch_csrf(self) -> str:
        return await self.http.fetch_csrf()

    @property
    def clock_offset_s(self) -> float:
        """Tilt's clock minus ours (from the csrf answer's ``Date``)."""
        return self.http.clock_offset_s

    def reload_token(self) -> None:
        self.http.reload_token()

    async def open(self, csrf: str) -> AsyncGenerator[str, None]:
        # Imported with the first connect, not at start-up (23 modules before `initialize`).
        from websockets.asyncio.client import connect
        from websockets.exceptions import (
            ConnectionClosed,
            InvalidHandshake,
            InvalidStatus,
            InvalidURI,
        )

        url = f"{self.ws_url}?csrf={quote(csrf)}"
        shown = self.ws_url  # the csrf stays out of messages
        try:
            # No Origin header (Tilt compares it with Host character for character), no
            # compression (Tilt offers none), a frame limit far above Tilt's 3.9 MB, and
            # client pings (Tilt answers them) so a silent server is noticed.
            ws = await connect(
                url,
                max_size=self.max_frame_bytes,
                open_timeout=self.open_timeout_s,
                ping_interval=self.ping_interval_s,
                ping_timeout=self.ping_timeout_s,
                compression=None,
                user_agent_header="tilt-mcp-bridge",
                close_timeout=CLOSE_TIMEOUT_S,
            )
            try:
                # Tilt sends its complete view at once; a server that accepts and then
                # says nothing is treated as down. Later silences are caught by pings.
                try:
                    with anyio.fail_after(self.first_frame_timeout_s):
                        first = await ws.recv()
                except TimeoutError:
                    raise TiltUnreachable(
                        f"{shown} accepted the websocket but sent no view within "
                        f"{self.first_frame_timeout_s}s"
                    ) from None
                yield _text(first)
                async for message in ws:
                    yield _text(message)
            finally:
                # Closed on every exit, cancellation (shutdown) included: shielded with a
                # deadline, then the socket is dropped whatever the close handshake did.
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT_S):
                    await ws.close()
                ws.transport.abort()
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 403:
                raise TiltAuthError(
                    f"{shown} refused the websocket (403): the csrf token is stale "
                    "(Tilt restarted?) or the Origin check failed"
                ) from exc
            raise TiltError(f"{shown} refused the websocket with HTTP {status}") from exc
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            if code == 1009:
                raise StreamClosed(
                    f"a frame from {shown} exceeded the {self.max_frame_bytes} byte limit "
                    "(raise --max-frame-mb)",
                    code,
                ) from exc
            if exc.sent is not None and exc.sent.code == 1011:
                raise StreamClosed(
                    f"{shown} stopped answering pings within {self.ping_timeout_s}s (Tilt hung?)",
                    code,
                ) from exc
            raise StreamClosed(f"connection to {shown} closed (code {code})", code) from exc
        except InvalidURI as exc:
            raise TiltError(f"{shown} is not a valid websocket URL; check --host/--port") from exc
        except InvalidHandshake as exc:
            raise TiltError(f"websocket handshake with {shown} failed: {exc}") from exc
        except TimeoutError as exc:
            raise TiltUnreachable(f"{shown} did not answer within {self.open_timeout_s}s") from exc
        except OSError as exc:
            raise TiltUnreachable(
                f"tilt is not reachable at {shown} ({exc.strerror or exc}); is 'tilt up' running?"
            ) from exc


def _text(message: str | bytes) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", "replace")
