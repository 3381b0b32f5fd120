"""Tilt's HTTP API client on its own, against the fake Tilt on 127.0.0.1: every call is
accepted as Tilt accepts a correct request, with ``X-Tilt-Token`` and no ``Origin``."""

from __future__ import annotations

import contextlib
import json
import socket

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketStream

from bridge.control import build_inputs
from bridge.errors import TiltAuthError, TiltError, TiltUnreachable
from bridge.settings import TokenSource
from bridge.testing import FakeTilt
from bridge.tilt.client import BUTTON_PATH, TiltHTTP
from bridge.tilt.view import decode_view_object

from .harness import raw_server, settings_for

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


async def test_each_request_closes_its_connection_and_nothing_is_sent_after_aclose() -> None:
    """One connection per request (``Connection: close``), none left open; after
    ``aclose`` a request is refused before it reaches Tilt."""
    unused = TiltHTTP("http://127.0.0.1:9", TokenSource(), timeout_s=1)
    await unused.aclose()
    await unused.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await unused.fetch_csrf()
    async with FakeTilt() as tilt:
        settings = settings_for(tilt)
        http = TiltHTTP(settings.tilt_base_url, settings.token, timeout_s=5)
        assert await http.fetch_csrf() == tilt.csrf
        assert await http.fetch_csrf() == tilt.csrf
        sent = len(tilt.requests)
        await http.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await http.fetch_csrf()
        assert len(tilt.requests) == sent
    assert [r.path for r in tilt.requests] == ["/api/websocket_token"] * 2


# -- what is not Tilt, or not all of it ------------------------------------------------


def client(url: str, timeout_s: float = 5) -> TiltHTTP:
    return TiltHTTP(url, TokenSource(), timeout_s=timeout_s)


async def test_a_port_that_is_not_http_says_so() -> None:
    async def garbage(stream: SocketStream) -> None:
        await stream.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    async with raw_server(garbage) as url:
        with pytest.raises(TiltUnreachable, match=r"not HTTP/1\.1.*is this port Tilt's"):
            await client(url).fetch_csrf()


async def test_a_connection_closed_before_the_answer_is_unreachable() -> None:
    async def hang_up(stream: SocketStream) -> None:
        return

    async with raw_server(hang_up) as url:
        with pytest.raises(TiltUnreachable, match="not reachable"):
            await client(url).fetch_csrf()


async def test_an_answer_that_never_comes_times_out_in_our_words() -> None:
    async def silent(stream: SocketStream) -> None:
        await anyio.sleep(30)

    async with raw_server(silent) as url:
        with pytest.raises(TiltUnreachable, match="timed out; is Tilt busy or restarting"):
            await client(url, timeout_s=0.3).fetch_csrf()


async def test_a_body_past_the_cap_is_refused_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bridge.tilt._http11.MAX_BODY_BYTES", 1000)

    async def flood(stream: SocketStream) -> None:
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        with contextlib.suppress(anyio.BrokenResourceError, OSError):
            for _ in range(100):
                await stream.send(b"x" * 1000)

    async with raw_server(flood) as url:
        with pytest.raises(TiltError, match="the answer is over 1,000 bytes; not read further"):
            await client(url).get_view()


async def test_a_hang_up_in_the_middle_of_the_answer_is_unreachable_not_a_wrong_port() -> None:
    async def half(stream: SocketStream) -> None:
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")

    async with raw_server(half) as url:
        with pytest.raises(TiltUnreachable, match=r"not reachable .*ConnectionResetError"):
            await client(url).get_view()


@pytest.mark.parametrize(
    "token", ["SECRETTOKEN123\nline2", "SECRETTOKEN123\u00e9", "SECRET\r\nX: y"]
)
async def test_a_token_that_cannot_go_in_a_header_is_refused_without_showing_it(
    token: str,
) -> None:
    async with FakeTilt() as tilt:
        http = TiltHTTP(tilt.base_url, TokenSource(env_value=token), timeout_s=5)
        with pytest.raises(TiltAuthError, match="control or non-ASCII character") as caught:
            await http.fetch_csrf()
        assert tilt.requests == []  # nothing was sent
    seen = [caught.value, caught.value.__cause__, caught.value.__context__]
    assert not any(e is not None and "SECRET" in str(e) for e in seen)
    assert "SECRET" not in repr(caught.value)


async def test_a_closed_port_is_unreachable_without_the_token() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    http = TiltHTTP(f"http://127.0.0.1:{port}", TokenSource(env_value="secret-token-1234"))
    with pytest.raises(TiltUnreachable, match="is 'tilt up' running") as caught:
        await http.fetch_csrf()
    assert "secret-token-1234" not in str(caught.value)


async def test_a_chunked_answer_with_a_date_is_read_whole_and_sets_the_clock() -> None:
    async def chunked(stream: SocketStream) -> None:
        await stream.send(
            b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 12:00:00 GMT\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n4\r\ncsrf\r\n3\r\n-42\r\n0\r\n\r\n"
        )

    async with raw_server(chunked) as url:
        http = client(url)
        assert await http.fetch_csrf() == "csrf-42"
    assert http.clock_offset_s != 0.0
