"""Tilt's HTTP API client on its own, against the fake Tilt on 127.0.0.1: every call is
accepted as Tilt accepts a correct request, with ``X-Tilt-Token`` and no ``Origin``."""

from __future__ import annotations

import json

import pytest

from bridge.control import build_inputs
from bridge.settings import TokenSource
from bridge.testing import FakeTilt
from bridge.tilt.client import BUTTON_PATH, TiltHTTP
from bridge.tilt.view import decode_view_object

from .harness import settings_for

pytestmark = pytest.mark.anyio


async def test_every_call_carries_the_token_and_no_origin_and_is_accepted() -> None:
    async with FakeTilt() as tilt:
        settings = settings_for(tilt)
        http = TiltHTTP(settings.tilt_base_url, settings.token, timeout_s=5)
        try:
            assert await http.fetch_csrf() == tilt.csrf
            assert json.loads(await http.get_view())["isComplete"] is True
            assert await http.trigger("manual") == ""
            await http.set_trigger_mode(["ok"], 1)
            await http.set_tiltfile_args(["--only", "web"])
            (btn,) = decode_view_object({"uiButtons": [tilt.button("ok-hello")]}).buttons or ()
            inputs = build_inputs(btn, {"WHO": "lab"}, allow_hidden=False)
            await http.put_button_status(btn.name, btn.metadata_json, inputs)
        finally:
            await http.aclose()
    calls = [r for r in tilt.requests if r.path.startswith(("/api/", "/proxy/"))]
    assert [r.path for r in calls] == [
        "/api/websocket_token",
        "/api/view",
        "/api/trigger",
        "/api/override/trigger_mode",
        "/api/set_tiltfile_args",
        BUTTON_PATH.format(name="ok-hello"),
    ]
    for req in calls:
        assert req.status == 200, req.path
        assert req.headers.get("x-tilt-token") == tilt.token
        assert "origin" not in req.headers


async def test_the_client_is_built_on_the_first_request_and_closes_cleanly_either_way() -> None:
    """Start-up builds no httpx2 client (issue 13); ``aclose`` works whether a request
    built one or not, and nothing is sent after it."""
    unused = TiltHTTP("http://127.0.0.1:9", TokenSource(), timeout_s=1)
    await unused.aclose()
    await unused.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await unused.fetch_csrf()
    async with FakeTilt() as tilt:
        settings = settings_for(tilt)
        http = TiltHTTP(settings.tilt_base_url, settings.token, timeout_s=5)
        assert http._client is None
        assert await http.fetch_csrf() == tilt.csrf
        built = http._client
        assert built is not None
        await http.fetch_csrf()
        assert http._client is built  # one client, reused
        await http.aclose()
        assert built.is_closed
        with pytest.raises(RuntimeError, match="closed"):
            await http.fetch_csrf()
