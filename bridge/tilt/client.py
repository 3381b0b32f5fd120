"""Tilt's HTTP API: csrf for the websocket, and the write operations of its web UI.

Every request carries ``X-Tilt-Token`` and no ``Origin`` header (tilt-protocol.md
§2, §5). The token never appears in an error message.

HTTP/1.1 is spoken with h11 (the protocol state machine the fake Tilt's server uses
too) over an anyio TCP stream, one connection per request (``Connection: close``):
Tilt's API is plain ``http://`` on a near host, the bridge makes a handful of calls a
minute, and a pooling client's transport stack (httpx2 → httpcore2, and trio when it is
installed) cost the idle bridge 1.6 MiB of RSS (4 MB with trio) and ~20 ms (60 ms) of
CPU on its first request. This is the one place socket and HTTP errors are translated
into :mod:`bridge.errors`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlsplit

import anyio

from bridge.errors import (
    TiltAuthError,
    TiltConflict,
    TiltError,
    TiltRequestError,
    TiltUnreachable,
)
from bridge.settings import Secret, TokenSource

BUTTON_PATH: Final = "/proxy/apis/tilt.dev/v1alpha1/uibuttons/{name}/status"
BUILD_REASON_WEB: Final = 16  # model.BuildReasonFlagTriggerWeb, what Tilt's web UI sends

AUTH_HINT: Final = (
    "Tilt rejected the token (403). The bridge reads it from {source}; make sure it is the "
    "token of the Tilt you are pointing at (`cat ~/.tilt-dev/token`, or set TILT_TOKEN / "
    "TILT_DEV_DIR), or run tilt with TILT_DISABLE_HUD_AUTH=1"
)


def server_offset_s(date_header: str | None, now: float) -> float | None:
    """Tilt's clock minus ours, from an HTTP ``Date`` header (whole seconds: the middle of
    that second is taken), or None without a usable header."""
    if not date_header:
        return None
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if server.tzinfo is None:
        return None
    return server.timestamp() + 0.5 - now


def click_timestamp(now: datetime | None = None) -> str:
    """``lastClickedAt`` with exactly six fractional digits, as Tilt's web UI sends."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of Tilt's: status, headers (names lower-cased) and the whole body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> object:
        """The body as JSON (``ValueError`` if it is not)."""
        return json.loads(self.content)


class TiltHTTP:
    """An async client for one Tilt (``http://host:port``)."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url
        self._clock = clock
        self.clock_offset_s = 0.0
        """Tilt's clock minus ours, from the ``Date`` of Tilt's latest answer (0 until one):
        the middle of that whole second, so ±0.5 s. Used where the bridge must speak in
        Tilt's time (``since=``); Tilt's own times are never compared with ours."""
        self._offset_at_most_s = 0.0
        """The largest offset the latest ``Date`` allows (its second's end, against the
        moment the request was sent): click times are stamped with it, so a click is never
        earlier on Tilt's clock than Tilt's now."""
        self._last_click: datetime | None = None
        self._token_source = token
        self._token: Secret | None = token.read()
        # Tilt's HUD serves plain http:// only, and so does every URL we build.
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Tilt's API is plain http://host:port, got {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self._host_header = host if parts.port is None else f"{host}:{parts.port}"
        self._timeout_s = timeout_s
        self._closed = False

    async def aclose(self) -> None:
        """No request is made after this (each request closes its own connection)."""
        self._closed = True

    def reload_token(self) -> None:
        """Re-read the token (after a 403 the file may have been rewritten)."""
        self._token = self._token_source.read()

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._token is not None:
            headers["X-Tilt-Token"] = self._token.reveal()
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        expect: Sequence[int] = (200,),
    ) -> Reply:
        if self._closed:
            raise RuntimeError(f"TiltHTTP for {self.base_url} is closed")
        content = b"" if body is None else json.dumps(body).encode()
        extra = {"Content-Type": "application/json"} if body is not None else None
        what = f"{method} {self.base_url}{path}"
        sent_at = self._clock()
        from bridge.tilt import _http11  # h11, on the first request: not before ``initialize``

        try:
            with anyio.fail_after(self._timeout_s):
                status, names, data = await _http11.exchange(
                    self._host,
                    self._port,
                    self._host_header,
                    method,
                    path,
                    content,
                    self._headers(extra),
                )
                resp = Reply(status, names, data)
        except TimeoutError as exc:
            raise TiltUnreachable(f"{what} timed out; is Tilt busy or restarting?") from exc
        except (OSError, anyio.BrokenResourceError) as exc:
            raise TiltUnreachable(
                f"tilt is not reachable at {self.base_url} ({exc.__class__.__name__}); "
                "is 'tilt up' running?"
            ) from exc
        except _http11.Unsendable:
            raise TiltAuthError(
                f"{what}: the token read from {self._token_source.describe()} (or the path) "
                "holds a control or non-ASCII character and cannot be sent; check it"
            ) from None
        except _http11.TooBig as exc:
            raise TiltError(f"{what}: {exc}; not read further") from exc
        except _http11.NotHTTP as exc:
            raise TiltUnreachable(
                f"{what}: the answer is not HTTP/1.1 Tilt speaks ({_short(str(exc), 120)}); "
                "is this port Tilt's?"
            ) from exc
        received_at = self._clock()
        offset = server_offset_s(resp.headers.get("date"), received_at)
        if offset is not None:
            self.clock_offset_s = offset
            # Date's second S ends at S + 1 = (offset - 0.5 + received_at) + 1; Tilt made
            # the answer after we sent the request, so offset ≤ S + 1 - sent_at
            self._offset_at_most_s = offset + 0.5 + (received_at - sent_at)
        if resp.status_code in expect:
            return resp
        text = _short(resp.text)
        if resp.status_code == 403:
            raise TiltAuthError(
                AUTH_HINT.format(source=self._token_source.describe()) + f" [{what}]"
            )
        if resp.status_code == 409:
            raise TiltConflict(f"{what}: 409 conflict: {text}")
        raise TiltRequestError(
            f"{what} answered {resp.status_code}: {text}", status=resp.status_code, body=resp.text
        )

    # ------------------------------------------------------------------ reads

    async def fetch_csrf(self) -> str:
        """``GET /api/websocket_token``: the per-process csrf for ``/ws/view``."""
        resp = await self.request("GET", "/api/websocket_token")
        csrf = resp.text.strip()
        if not csrf:
            raise TiltError(f"{self.base_url}/api/websocket_token returned an empty csrf token")
        return csrf

    async def get_view(self) -> str:
        """``GET /api/view``: the complete view as JSON text."""
        return (await self.request("GET", "/api/view")).text

    # ------------------------------------------------------------------ writes

    async def trigger(self, resource: str) -> str:
        """``POST /api/trigger``. Returns the body: empty, or Tilt's note (e.g. disabled)."""
        resp = await self.request(
            "POST",
            "/api/trigger",
            body={"manifest_names": [resource], "build_reason": BUILD_REASON_WEB},
        )
        return resp.text.strip()

    async def set_trigger_mode(self, resources: Sequence[str], mode: int) -> None:
        await self.request(
            "POST",
            "/api/override/trigger_mode",
            body={"manifest_names": list(resources), "trigger_mode": mode},
        )

    async def set_tiltfile_args(self, args: Sequence[str]) -> None:
        await self.request("POST", "/api/set_tiltfile_args", body=list(args))

    async def put_button_status(
        self,
        name: str,
        metadata_json: str,
        inputs: Sequence[Mapping[str, object]],
        *,
        clicked_at: str | None = None,
    ) -> Mapping[str, object]:
        """Click a UIButton: PUT its status with the latest metadata (409 if stale)."""
        status: dict[str, object] = {"lastClickedAt": clicked_at or self._click_time()}
        if inputs:
            status["inputs"] = list(inputs)
        body = {"metadata": json.loads(metadata_json), "status": status}
        resp = await self.request("PUT", BUTTON_PATH.format(name=name), body=body)
        try:
            parsed = resp.json()
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def _click_time(self) -> str:
        """Now on Tilt's clock, never earlier than Tilt's now and always after our previous
        click: Tilt takes a click only if its ``lastClickedAt`` is after the moment Tilt
        processed the one before (a ToggleButton compares it with its own ``time.Now()``),
        so a stamp that lags Tilt's clock by the ``Date`` header's rounding is ignored."""
        at = datetime.fromtimestamp(self._clock(), UTC) + timedelta(seconds=self._offset_at_most_s)
        if self._last_click is not None and at <= self._last_click:
            at = self._last_click + timedelta(microseconds=1)
        self._last_click = at
        return click_timestamp(at)


def _short(text: str, limit: int = 300) -> str:
    text = text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"
