"""Tilt's HTTP API: csrf for the websocket, and the write operations of its web UI.

Every request carries ``X-Tilt-Token`` and no ``Origin`` header (tilt-protocol.md
§2, §5). This is the one place httpx2 exceptions are translated into
:mod:`bridge.errors`. The token never appears in an error message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

import httpx2

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
        """Tilt's clock minus ours, from the ``Date`` of Tilt's latest answer (0 until one).
        Used where the bridge must speak in Tilt's time (a button's click time); Tilt's own
        times are never compared with ours."""
        self._token_source = token
        self._token: Secret | None = token.read()
        # Tilt's HUD serves plain http:// only, and so does every URL we build; with no
        # TLS to verify, skip loading the CA bundle (measured: 7.7 MB RSS, ~190 ms CPU).
        if not base_url.startswith("http://"):
            raise ValueError(f"Tilt's API is plain http://, got {base_url!r}")
        self._timeout_s = timeout_s
        self._client: httpx2.AsyncClient | None = None
        self._closed = False

    def _http(self) -> httpx2.AsyncClient:
        """The httpx2 client, built on the first request: building it imports its
        transport stack (httpcore2, h11, and trio when installed), which start-up does not
        need before ``initialize``."""
        if self._closed:
            raise RuntimeError(f"TiltHTTP for {self.base_url} is closed")
        if self._client is None:
            self._client = httpx2.AsyncClient(
                base_url=self.base_url,
                timeout=self._timeout_s,
                follow_redirects=False,
                trust_env=False,
                verify=False,
                headers={"User-Agent": "tilt-mcp-bridge"},
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client if a request built it; no request is made after this."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

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
    ) -> httpx2.Response:
        content = None if body is None else json.dumps(body).encode()
        extra = {"Content-Type": "application/json"} if content is not None else None
        what = f"{method} {self.base_url}{path}"
        try:
            resp = await self._http().request(
                method, path, content=content, headers=self._headers(extra)
            )
        except httpx2.TimeoutException as exc:
            raise TiltUnreachable(f"{what} timed out; is Tilt busy or restarting?") from exc
        except httpx2.TransportError as exc:
            raise TiltUnreachable(
                f"tilt is not reachable at {self.base_url} ({exc.__class__.__name__}); "
                "is 'tilt up' running?"
            ) from exc
        offset = server_offset_s(resp.headers.get("date"), self._clock())
        if offset is not None:
            self.clock_offset_s = offset
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
        status: dict[str, object] = {
            "lastClickedAt": clicked_at
            or click_timestamp(
                datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)  # on Tilt's clock
            )
        }
        if inputs:
            status["inputs"] = list(inputs)
        body = {"metadata": json.loads(metadata_json), "status": status}
        resp = await self.request("PUT", BUTTON_PATH.format(name=name), body=body)
        try:
            parsed = resp.json()
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


def _short(text: str, limit: int = 300) -> str:
    text = text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"
