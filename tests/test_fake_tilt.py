"""The fake Tilt behaves like the real one: auth, stream, checkpoints and write endpoints.

Everything goes over real sockets: a websockets client and an httpx2 client against
``FakeTilt`` on 127.0.0.1. Waits are on conditions under ``anyio.fail_after``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from bridge.demo import run_demo_activity
from bridge.testing import (
    DEFAULT_INITIAL,
    FakeTilt,
    LogStore,
    TiltModel,
    load_api_view,
    load_recording,
    recording_names,
)

pytestmark = pytest.mark.anyio

View = dict[str, Any]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- helpers


def auth(tilt: FakeTilt) -> dict[str, str]:
    assert tilt.token is not None
    return {"X-Tilt-Token": tilt.token}


@asynccontextmanager
async def http(tilt: FakeTilt) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=tilt.base_url, timeout=5) as client:
        yield client


@asynccontextmanager
async def stream(tilt: FakeTilt) -> AsyncIterator[ClientConnection]:
    """A websocket client that fetched its csrf like the bridge does."""
    async with http(tilt) as client:
        csrf = (await client.get("/api/websocket_token", headers=auth(tilt))).text
    async with connect(f"{tilt.ws_url}?csrf={csrf}", max_size=None) as ws:
        yield ws


async def recv(ws: ClientConnection) -> View:
    with anyio.fail_after(5):
        raw = await ws.recv()
    assert isinstance(raw, str)
    assert raw.endswith("\n")
    frame: View = json.loads(raw)
    return frame


async def recv_until(ws: ClientConnection, pred: Callable[[View], bool]) -> list[View]:
    """Frames up to and including the first one matching ``pred``."""
    frames: list[View] = []
    with anyio.fail_after(5):
        while True:
            frames.append(await recv(ws))
            if pred(frames[-1]):
                return frames


def res_in(frame: View, name: str) -> View | None:
    for obj in frame.get("uiResources", []):
        if obj["metadata"]["name"] == name:
            return obj  # type: ignore[no-any-return]
    return None


def status_of(name: str, value: str) -> Callable[[View], bool]:
    def pred(frame: View) -> bool:
        res = res_in(frame, name)
        return res is not None and res["status"].get("updateStatus") == value

    return pred


def texts(frames: list[View]) -> list[str]:
    return [s["text"] for f in frames for s in f.get("logList", {}).get("segments", [])]


def assert_contiguous(frames: list[View], start: int) -> int:
    """Each frame's logs start where the previous ended; return the last checkpoint."""
    last = start
    for frame in frames:
        if "logList" in frame:
            ll = frame["logList"]
            assert ll.get("fromCheckpoint", 0) == last
            assert ll["toCheckpoint"] == last + len(ll["segments"])
            last = ll["toCheckpoint"]
    return last


def click_body(button: View, **status: Any) -> View:
    return {"metadata": button["metadata"], "status": status}


CLICKED = "2026-11-27T10:00:00.123456Z"


# --------------------------------------------------------------------------- recordings


def test_recordings_are_bundled_and_parsed() -> None:
    names = recording_names()
    assert names[0] == "01-startup"
    assert len(names) == 11  # 01-09 from the first recording, 10-11 recorded for issue 11
    rec = load_recording("09-tilt-restart")
    assert len(rec.connections) == 2
    before, after = rec.connections
    assert before.label == "before restart"
    assert before.complete_view()["isComplete"] is True
    closed = [m for m in before.markers if m.kind == "server-closed"]
    assert closed[0].data["code"] == 1006
    assert after.complete_view()["tiltStartTime"] != before.complete_view()["tiltStartTime"]


def test_action_markers_keep_tilts_answers() -> None:
    markers = load_recording("04-disable-enable").connections[0].markers
    stale = next(m for m in markers if m.data.get("status") == 409)
    assert json.loads(str(stale.data["body"]))["reason"] == "Conflict"


def test_unknown_recording_names_the_known_ones() -> None:
    with pytest.raises(LookupError, match="02-trigger-manual"):
        load_recording("nope")


def test_api_view_recording_is_a_complete_view() -> None:
    view = load_api_view()
    assert view["isComplete"] is True
    assert "uiResources" in view


# --------------------------------------------------------------------------- pure model


def seg(span: str, text: str, t: str = "2026-01-01T00:00:00.000000Z") -> dict[str, object]:
    return {"spanId": span, "time": t, "text": text, "level": "INFO"}


def test_log_store_checkpoints_index_the_store() -> None:
    store = LogStore()
    for i in range(3):
        store.append(seg("a", f"{i}\n"), manifest="res")
    assert store.checkpoint == 3
    assert store.since(1) == (1, store.segments[1:])
    assert store.since(99) == (3, [])
    ll = store.log_list(1, all_spans=False)
    assert ll is not None
    assert ll["fromCheckpoint"] == 1
    assert ll["toCheckpoint"] == 3
    assert ll["spans"] == {"a": {"manifestName": "res"}}
    assert store.log_list(3, all_spans=False) is None


def test_log_store_truncates_like_tilt() -> None:
    """Past the cap the heaviest (recency-weighted) manifest loses its oldest lines."""
    store = LogStore(max_bytes=100)
    store.append(seg("s", "short\n", "2026-01-01T00:00:00.000000Z"), manifest="small")
    for i in range(20):
        store.append(seg("b", f"big {i:02d}\n", "2026-01-01T00:00:01.000000Z"), manifest="big")
    assert store.offset > 0
    assert store.checkpoint == 21
    assert store.size <= 100
    assert "short\n" in store.texts("small")
    assert store.texts("big")[-1] == "big 19\n"
    assert store.texts("big")[0] != "big 00\n"
    # A client behind the cut sees fromCheckpoint jump past its own checkpoint.
    start, _ = store.since(0)
    assert start == store.offset


def test_model_merges_deltas_and_tombstones() -> None:
    model = TiltModel(load_recording(DEFAULT_INITIAL).connections[0].complete_view())
    assert model.logs.checkpoint == 105
    ok = model.resources["ok"]
    replaced = {**ok, "status": {"updateStatus": "in_progress"}}
    change = model.apply({"uiResources": [replaced]})
    assert model.resources["ok"]["status"] == {"updateStatus": "in_progress"}
    assert change.resources == [replaced]
    tomb = {"metadata": {"name": "ok", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    model.apply({"uiResources": [tomb], "logList": {"segments": [seg("x", "hi\n")]}})
    assert "ok" not in model.resources
    assert model.logs.checkpoint == 106


# --------------------------------------------------------------------------- auth


async def test_websocket_token_needs_the_session_token() -> None:
    async with FakeTilt() as tilt, http(tilt) as client:
        assert (await client.get("/api/websocket_token")).status_code == 403
        wrong = {"X-Tilt-Token": "nope"}
        assert (await client.get("/api/websocket_token", headers=wrong)).status_code == 403
        r = await client.get("/api/websocket_token", headers=auth(tilt))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text == tilt.csrf
        assert tilt.token is not None
        by_cookie = await client.get(
            "/api/websocket_token", headers={"Cookie": f"Tilt-Token={tilt.token}"}
        )
        assert by_cookie.text == tilt.csrf


async def test_every_api_and_proxy_path_needs_the_token() -> None:
    async with FakeTilt() as tilt, http(tilt) as client:
        for method, path in [
            ("GET", "/api/view"),
            ("POST", "/api/trigger"),
            ("POST", "/api/override/trigger_mode"),
            ("POST", "/api/set_tiltfile_args"),
            ("PUT", "/proxy/apis/tilt.dev/v1alpha1/uibuttons/ok-hello/status"),
        ]:
            assert (await client.request(method, path, json={})).status_code == 403, path
        assert [r.status for r in tilt.requests] == [403] * 5


async def test_origin_must_equal_host_exactly() -> None:
    async with FakeTilt() as tilt, http(tilt) as client:
        other = {**auth(tilt), "Origin": f"http://localhost:{tilt.port}"}
        assert (await client.get("/api/view", headers=other)).status_code == 403
        same = {**auth(tilt), "Origin": f"http://127.0.0.1:{tilt.port}"}
        assert (await client.get("/api/view", headers=same)).status_code == 200
        url = f"{tilt.ws_url}?csrf={tilt.csrf}"
        foreign = connect(url, origin=f"http://localhost:{tilt.port}")  # type: ignore[arg-type]
        with pytest.raises(InvalidStatus) as caught:
            async with foreign:
                pass
        assert caught.value.response.status_code == 403


async def test_root_hands_out_the_token_cookie_without_origin() -> None:
    async with FakeTilt() as tilt, http(tilt) as client:
        r = await client.get("/")
        assert r.cookies.get("Tilt-Token") == tilt.token
        same = {"Origin": f"http://127.0.0.1:{tilt.port}"}
        assert "Tilt-Token" not in (await client.get("/", headers=same)).cookies


async def test_no_token_means_auth_off() -> None:
    async with FakeTilt(token=None) as tilt, http(tilt) as client:
        csrf = (await client.get("/api/websocket_token")).text
        assert csrf == tilt.csrf
        assert (await client.get("/api/view")).status_code == 200


async def test_websocket_needs_the_current_csrf() -> None:
    async with FakeTilt() as tilt:
        for query in ("", "?csrf=", "?csrf=not-the-csrf"):
            with pytest.raises(InvalidStatus) as caught:
                async with connect(tilt.ws_url + query):
                    pass
            assert caught.value.response.status_code == 403
        assert [r.status for r in tilt.requests_to("/ws/view")] == [403, 403, 403]
        assert tilt.connected == 0


async def test_old_tilt_accepts_a_websocket_without_csrf() -> None:
    async with FakeTilt(require_csrf=False) as tilt, connect(tilt.ws_url, max_size=None) as ws:
        assert (await recv(ws))["isComplete"] is True


async def test_requests_are_recorded_with_headers_and_status() -> None:
    async with FakeTilt() as tilt, stream(tilt) as ws:
        await recv(ws)
        token_req, ws_req = tilt.requests
        assert (token_req.method, token_req.path, token_req.status) == (
            "GET",
            "/api/websocket_token",
            200,
        )
        assert token_req.headers["x-tilt-token"] == tilt.token
        assert "origin" not in token_req.headers
        assert (ws_req.path, ws_req.status) == ("/ws/view", 101)
        assert ws_req.query == f"csrf={tilt.csrf}"


# --------------------------------------------------------------------------- stream


async def test_first_frame_is_the_complete_view() -> None:
    recorded = load_recording(DEFAULT_INITIAL).connections[0].complete_view()
    async with FakeTilt() as tilt, stream(tilt) as ws:
        view = await recv(ws)
        assert view["isComplete"] is True
        assert view["tiltStartTime"] == recorded["tiltStartTime"] == tilt.tilt_start_time
        assert view["uiResources"] == recorded["uiResources"]
        assert view["uiButtons"] == recorded["uiButtons"]
        assert view["uiSession"] == recorded["uiSession"]
        assert "fromCheckpoint" not in view["logList"]
        assert view["logList"]["toCheckpoint"] == len(view["logList"]["segments"]) == 105
        assert view["logList"]["segments"] == recorded["logList"]["segments"]  # type: ignore[index]
        assert view["logList"]["spans"] == recorded["logList"]["spans"]  # type: ignore[index]
        assert tilt.connected == 1


async def test_api_view_is_the_complete_view() -> None:
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        r = await client.get("/api/view", headers=auth(tilt))
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == await recv(ws)


async def test_send_broadcasts_deltas_with_the_fakes_checkpoints() -> None:
    replayed = load_recording(DEFAULT_INITIAL).connections[0].frames[1].view()
    async with FakeTilt() as tilt, stream(tilt) as a, stream(tilt) as b:
        await tilt.wait_connected(2)
        await recv(a)
        await recv(b)
        await tilt.send(replayed)
        await tilt.send({"logList": {"segments": [seg("", "global line\n")]}})
        for ws in (a, b):
            first, second = await recv(ws), await recv(ws)
            assert first["logList"]["fromCheckpoint"] == 105
            assert first["logList"]["segments"] == replayed["logList"]["segments"]  # type: ignore[index]
            assert second["logList"]["fromCheckpoint"] == 106
            assert second["logList"]["toCheckpoint"] == 107
            assert second["tiltStartTime"] == tilt.tilt_start_time
        # A new client gets everything in its complete view.
        async with stream(tilt) as c:
            view = await recv(c)
            assert view["logList"]["toCheckpoint"] == 107
            assert view["logList"]["segments"][-1]["text"] == "global line\n"


async def test_send_applies_tombstones() -> None:
    tomb = {"metadata": {"name": "lazy", "deletionTimestamp": "2026-11-27T00:00:00Z"}}
    async with FakeTilt() as tilt, stream(tilt) as ws:
        await recv(ws)
        await tilt.send({"uiResources": [tomb]})
        frame = await recv(ws)
        assert frame["uiResources"] == [tomb]
        assert "logList" not in frame
        assert "lazy" not in tilt.model.resources


async def test_send_raw_sends_exactly_the_bytes() -> None:
    async with FakeTilt() as tilt, stream(tilt) as ws:
        await recv(ws)
        await tilt.send_raw("{not json")
        with anyio.fail_after(5):
            assert await ws.recv() == "{not json"


async def test_replay_feeds_a_recording_through_the_model() -> None:
    async with FakeTilt() as tilt, stream(tilt) as ws:
        await recv(ws)
        await tilt.replay("02-trigger-manual", until_action="lazy")
        end = tilt.model.logs.checkpoint
        assert end == 118  # 13 recorded log lines before the "lazy" trigger
        frames = await recv_until(ws, lambda f: f.get("logList", {}).get("toCheckpoint") == end)
        assert assert_contiguous(frames, 105) == end
        assert any(res_in(f, "manual") for f in frames)
        manual = tilt.resource("manual")
        assert manual["status"]["buildHistory"][0]["spanID"] == "build:13"  # type: ignore[index]
        assert "lazy ran\n" not in tilt.log_texts("lazy")


async def test_a_log_flood_truncates_the_store_and_checkpoints_jump() -> None:
    """Recording 08 (30 000 lines) through a fake with a 1 MB cap: ``from`` > last ``to``."""
    async with FakeTilt(initial="08-log-truncation", max_log_bytes=1_000_000) as tilt:
        async with stream(tilt) as ws:
            last = (await recv(ws))["logList"]["toCheckpoint"]
            await tilt.replay("08-log-truncation")
            end = tilt.model.logs.checkpoint
            jumps = []
            with anyio.fail_after(10):
                while last != end:
                    ll = (await recv(ws)).get("logList")
                    if ll:
                        if ll.get("fromCheckpoint", 0) > last:
                            jumps.append(ll)
                        last = ll["toCheckpoint"]
        assert jumps
        assert jumps[0]["fromCheckpoint"] == tilt.model.logs.offset
        assert tilt.model.logs.size <= 1_000_000
        assert tilt.log_texts("spammer")[-1].startswith("spam line 029999")


async def test_drop_is_an_abnormal_closure() -> None:
    async with FakeTilt() as tilt, stream(tilt) as ws:
        await recv(ws)
        await tilt.drop()
        with pytest.raises(ConnectionClosedError) as caught:
            await recv(ws)
        assert caught.value.rcvd is None
        assert ws.close_code == 1006
        assert tilt.connected == 0


async def test_close_sends_a_close_frame() -> None:
    async with FakeTilt() as tilt, stream(tilt) as ws:
        await recv(ws)
        await tilt.close(1001, "bye")
        with pytest.raises(ConnectionClosedOK) as caught:
            await recv(ws)
        assert caught.value.rcvd is not None
        assert caught.value.rcvd.code == 1001


async def test_restart_is_a_new_tilt_process() -> None:
    async with FakeTilt() as tilt:
        old_csrf, old_start = tilt.csrf, tilt.tilt_start_time
        async with stream(tilt) as ws:
            await recv(ws)
            await tilt.restart()
            with pytest.raises(ConnectionClosedError):
                await recv(ws)
            assert ws.close_code == 1006
        assert tilt.csrf != old_csrf
        assert tilt.tilt_start_time != old_start
        with pytest.raises(InvalidStatus) as caught:
            async with connect(f"{tilt.ws_url}?csrf={old_csrf}"):
                pass
        assert caught.value.response.status_code == 403
        async with stream(tilt) as ws:
            view = await recv(ws)
            assert view["tiltStartTime"] == tilt.tilt_start_time
            assert view["logList"]["toCheckpoint"] == 1
            assert view["logList"]["segments"][0]["text"].startswith("Tilt started on")
            assert {r["metadata"]["name"] for r in view["uiResources"]} >= {"ok", "fail"}


async def test_restart_forgets_running_builds() -> None:
    async with FakeTilt(build_time_s=60) as tilt:
        async with stream(tilt) as ws:
            await recv(ws)
            tilt.trigger("ok")
            await recv_until(ws, status_of("ok", "in_progress"))
            await tilt.restart()
        await tilt.wait_idle()
        async with stream(tilt) as ws:
            assert res_in(await recv(ws), "ok")["status"]["updateStatus"] == "in_progress"  # type: ignore[index]
            tilt.trigger("ok")  # a new process builds again
            await recv_until(ws, status_of("ok", "in_progress"))
            await tilt.drop()


async def test_restart_with_downtime_reopens_the_same_port() -> None:
    async with FakeTilt() as tilt:
        port = tilt.port
        await tilt.restart(down_s=0.05, initial=load_recording("09-tilt-restart").connections[1])
        assert tilt.port == port
        async with stream(tilt) as ws:
            view = await recv(ws)
            assert "uiResources" not in view  # Tiltfile not loaded yet in that recording


async def test_hung_mode_does_not_even_answer_pings() -> None:
    async with FakeTilt(hung=True) as tilt, stream(tilt) as ws:
        await tilt.wait_connected(1)
        pong = await ws.ping()
        with anyio.move_on_after(0.2) as scope:
            await pong
        assert scope.cancelled_caught
        await tilt.drop()


async def test_silent_mode_accepts_and_says_nothing() -> None:
    async with FakeTilt(silent=True) as tilt, stream(tilt) as ws:
        await tilt.wait_connected(1)
        await tilt.send({"logList": {"segments": [seg("", "x\n")]}})
        with anyio.move_on_after(0.2) as scope:
            await ws.recv()
        assert scope.cancelled_caught
        with anyio.fail_after(5):
            await (await ws.ping())  # the connection itself is alive


# --------------------------------------------------------------------------- POST /api/trigger


async def test_trigger_rejects_anything_but_one_known_name() -> None:
    async with FakeTilt() as tilt, http(tilt) as client:
        for names, status in [([], 400), (["ok", "fail"], 400), (["nope"], 404)]:
            body = {"manifest_names": names, "build_reason": 16}
            r = await client.post("/api/trigger", json=body, headers=auth(tilt))
            assert r.status_code == status, names
        assert r.text == "no manifest found with name 'nope'\n"


async def test_trigger_runs_a_build_like_tilt() -> None:
    """queued+pending with a "Web Trigger" init line → in_progress → ok (recording 02)."""
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        body = {"manifest_names": ["manual"], "build_reason": 16}
        r = await client.post("/api/trigger", json=body, headers=auth(tilt))
        assert (r.status_code, r.text) == (200, "")
        frames = await recv_until(ws, status_of("manual", "ok"))
        states = [res_in(f, "manual") for f in frames]
        pending, running, done = (s["status"] for s in states if s)
        assert pending["queued"] is True
        assert pending["updateStatus"] == "pending"
        assert pending["conditions"][0]["reason"] == "UpdatePending"
        assert running["updateStatus"] == "in_progress"
        span = running["currentBuild"]["spanID"]
        assert span == "build:13"  # the next build number, as in the recording
        assert "currentBuild" not in done
        assert done["buildHistory"][0]["spanID"] == span
        assert done["buildHistory"][1]["spanID"] == "build:4"
        assert done["conditions"][0] == {
            "type": "UpToDate",
            "status": "True",
            "lastTransitionTime": done["buildHistory"][0]["finishTime"],
        }
        init = frames[0]["logList"]["segments"][0]
        assert (init["spanId"], init["text"], init["fields"]) == (
            span,
            "Web Trigger\n",
            {"buildEvent": "init"},
        )
        assert "manual build ran at 20:59:27\n" in texts(frames)
        assert_contiguous(frames, 105)
        # Same status keys as Tilt's own frames in the recording.
        recorded = [
            res_in(f.view(), "manual")
            for f in load_recording("02-trigger-manual").connections[0].frames[1:]
        ]
        recorded_keys = [set(r["status"]) for r in recorded if r]
        assert [set(s["status"]) for s in states if s] == recorded_keys


async def test_trigger_of_a_failing_resource_fails_like_tilt() -> None:
    """Logs, the ERROR anchor without newline, updateStatus error (recording 03)."""
    recorded = load_recording("03-failing-build").connections[0]
    recorded_error = next(
        s
        for f in recorded.frames[1:]
        for s in f.view().get("logList", {}).get("segments", [])  # type: ignore[attr-defined]
        if s.get("level") == "ERROR"
    )
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        body = {"manifest_names": ["fail"], "build_reason": 16}
        assert (await client.post("/api/trigger", json=body, headers=auth(tilt))).status_code == 200
        frames = await recv_until(ws, status_of("fail", "error"))
        error = frames[-1]["logList"]["segments"][-1]
        assert error["text"] == recorded_error["text"]
        assert not error["text"].endswith("\n")
        assert (error["level"], error["anchor"]) == ("ERROR", True)
        status = res_in(frames[-1], "fail")["status"]  # type: ignore[index]
        assert status["buildHistory"][0]["error"].startswith('Command "echo')
        assert [c["reason"] for c in status["conditions"]] == ["UpdateError", "UpdateError"]
        assert "this goes to stderr\n" in texts(frames)


async def test_set_build_error_makes_a_build_fail() -> None:
    async with FakeTilt() as tilt, stream(tilt) as ws:
        await recv(ws)
        tilt.set_build_error("ok", "boom")
        tilt.trigger("ok")
        frames = await recv_until(ws, status_of("ok", "error"))
        assert texts(frames)[-1] == "Build Failed: boom"
        await tilt.wait_idle()


async def test_trigger_of_a_disabled_resource_answers_200_with_a_reason() -> None:
    async with FakeTilt() as tilt, http(tilt) as client:
        await tilt.send(
            {"uiResources": [disabled(tilt.resource("lazy"))]},
        )
        body = {"manifest_names": ["lazy"], "build_reason": 16}
        r = await client.post("/api/trigger", json=body, headers=auth(tilt))
        assert (r.status_code, r.text) == (200, 'resource "lazy" is currently disabled')
        await tilt.wait_idle()
        assert tilt.resource("lazy")["status"]["updateStatus"] == "none"  # type: ignore[index]


def disabled(res: dict[str, Any]) -> dict[str, Any]:
    res["status"]["disableStatus"]["state"] = "Disabled"
    return res


# --------------------------------------------------------------------------- trigger mode


async def test_trigger_mode_override_validates_then_updates() -> None:
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        url = "/api/override/trigger_mode"
        for body in [
            {"manifest_names": ["ok"], "trigger_mode": 4},
            {"manifest_names": ["nope"], "trigger_mode": 1},
            {"manifest_names": ["ok"], "trigger_mode": 1, "extra": True},
        ]:
            assert (await client.post(url, json=body, headers=auth(tilt))).status_code == 400
        body = {"manifest_names": ["ok"], "trigger_mode": 1}
        assert (await client.post(url, json=body, headers=auth(tilt))).status_code == 200
        frame = await recv(ws)
        assert res_in(frame, "ok")["status"]["triggerMode"] == 1  # type: ignore[index]
        assert tilt.resource("ok")["status"]["triggerMode"] == 1  # type: ignore[index]


# --------------------------------------------------------------------------- buttons


async def test_button_put_answers_like_tilts_apiserver() -> None:
    expected_409 = next(
        m.data["body"]
        for m in load_recording("04-disable-enable").connections[0].markers
        if m.data.get("status") == 409
    )
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        url = "/proxy/apis/tilt.dev/v1alpha1/uibuttons/{}/status"
        button = tilt.button("toggle-ticker-disable")
        old_rv = button["metadata"]["resourceVersion"]  # type: ignore[index]

        r = await client.put(url.format("nope"), json=click_body(button), headers=auth(tilt))
        assert r.status_code == 404
        assert r.json()["reason"] == "NotFound"

        bad = click_body(button, lastClickedAt="2026-11-27T10:00:00.123Z", inputs=[])
        r = await client.put(url.format("toggle-ticker-disable"), json=bad, headers=auth(tilt))
        assert r.status_code == 400
        assert r.json()["reason"] == "BadRequest"

        inputs = [{"name": "action", "hidden": {"value": "on"}}]
        good = click_body(button, lastClickedAt=CLICKED, inputs=inputs)
        r = await client.put(url.format("toggle-ticker-disable"), json=good, headers=auth(tilt))
        assert r.status_code == 200
        updated = r.json()
        assert updated["status"] == {"lastClickedAt": CLICKED, "inputs": inputs}
        assert int(updated["metadata"]["resourceVersion"]) > int(old_rv)
        frame = await recv(ws)
        assert frame["uiButtons"] == [updated]

        r = await client.put(url.format("toggle-ticker-disable"), json=good, headers=auth(tilt))
        assert r.status_code == 409
        assert r.text == expected_409

        r = await client.put("/proxy/apis/tilt.dev/v1alpha1/cmds/x", json={}, headers=auth(tilt))
        assert r.status_code == 403


async def click(
    tilt: FakeTilt,
    client: httpx2.AsyncClient,
    name: str,
    inputs: list[dict[str, Any]],
    clicked_at: str | None = None,
) -> None:
    """A click stamped now (the fake's clock is ours), as the web UI does."""
    when = clicked_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = click_body(tilt.button(name), lastClickedAt=when, inputs=inputs)
    url = f"/proxy/apis/tilt.dev/v1alpha1/uibuttons/{name}/status"
    r = await client.put(url, json=body, headers=auth(tilt))
    assert r.status_code == 200, r.text


def toggle(value: str) -> list[dict[str, Any]]:
    return [{"name": "action", "hidden": {"value": value}}]


async def test_disable_and_enable_through_the_toggle_button() -> None:
    """As recording 04: none/none, Disabled, the button flips, the server stops."""
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        await click(tilt, client, "toggle-ticker-disable", toggle("on"))
        frames = await recv_until(ws, status_of("ticker", "none"))
        status = res_in(frames[-1], "ticker")["status"]  # type: ignore[index]
        assert (status["updateStatus"], status["runtimeStatus"]) == ("none", "none")
        assert status["disableStatus"]["state"] == "Disabled"
        assert [c["reason"] for c in status["conditions"]] == ["Disabled", "Disabled"]
        button = next(b for b in frames[-1]["uiButtons"] if b["metadata"]["name"].startswith("t"))
        assert button["spec"]["text"] == "Enable Resource"
        assert button["spec"]["inputs"][0]["hidden"] == {"value": "off"}
        log = texts(frames)
        assert log[0].startswith('Resource is disabled, stopping cmd ["sh" "-c" "i=0;')
        assert log[1] == 'Resource "ticker" disabled. To enable/disable it, use the Tilt Web UI.\n'
        await tilt.wait_idle()

        await click(tilt, client, "toggle-ticker-disable", toggle("off"))
        frames = await recv_until(ws, status_of("ticker", "not_applicable"))
        status = res_in(frames[-1], "ticker")["status"]  # type: ignore[index]
        assert (status["runtimeStatus"], status["disableStatus"]["state"]) == ("ok", "Enabled")
        assert tilt.button("toggle-ticker-disable")["spec"]["text"] == "Disable Resource"  # type: ignore[index]
        assert 'Resource "ticker" enabled. To enable/disable it, use the Tilt Web UI.\n' in texts(
            frames
        )
        assert "Initial Build\n" in texts(frames)


async def test_a_toggle_click_not_after_the_last_processed_one_is_accepted_and_ignored() -> None:
    """As Tilt's ToggleButton reconciler: the PUT succeeds, nothing toggles, because its
    ``lastClickedAt`` is not after the moment Tilt processed the previous click."""
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        await click(tilt, client, "toggle-ticker-disable", toggle("on"))
        await recv_until(ws, status_of("ticker", "none"))
        await tilt.wait_idle()
        await click(tilt, client, "toggle-ticker-disable", toggle("off"), clicked_at=CLICKED)
        await tilt.wait_idle()
        assert tilt.resource("ticker")["status"]["disableStatus"]["state"] == "Disabled"  # type: ignore[index]
        assert tilt.button("toggle-ticker-disable")["status"]["lastClickedAt"] == CLICKED  # type: ignore[index]


async def test_custom_button_runs_its_command() -> None:
    """As recording 05: ``ok-hello`` logs "hello <WHO> from button"."""
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        await click(tilt, client, "ok-hello", [{"name": "WHO", "text": {"value": "lab"}}])
        frames = await recv_until(ws, lambda f: "logList" in f)
        assert texts(frames) == [
            'Running cmd: echo "hello $WHO from button"\n',
            "hello lab from button\n",
        ]
        assert frames[-1]["logList"]["spans"] == {"cmd:ok-hello": {"manifestName": "ok"}}


async def test_other_buttons_just_record_the_click() -> None:
    async with FakeTilt() as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        await click(tilt, client, "global-hello", [], clicked_at=CLICKED)
        frame = await recv(ws)
        assert frame["uiButtons"][0]["status"]["lastClickedAt"] == CLICKED
        await tilt.wait_idle()
        assert tilt.model.logs.checkpoint == 105


async def test_stop_build_button_cancels_the_running_build() -> None:
    async with FakeTilt(build_time_s=60) as tilt, http(tilt) as client, stream(tilt) as ws:
        await recv(ws)
        tilt.trigger("dep-a")
        await recv_until(ws, status_of("dep-a", "in_progress"))
        await click(tilt, client, "dep-a-stopbuild", [])
        frames = await recv_until(ws, status_of("dep-a", "error"))
        assert "Build Failed: build canceled" in texts(frames)
        status = res_in(frames[-1], "dep-a")["status"]  # type: ignore[index]
        assert status["buildHistory"][0]["error"] == "build canceled"
        await tilt.wait_idle()


# --------------------------------------------------------------------------- Tiltfile args


async def test_set_tiltfile_args() -> None:
    async with FakeTilt() as tilt, http(tilt) as client:
        url = "/api/set_tiltfile_args"
        assert (await client.post(url, json=["--a", "b"], headers=auth(tilt))).status_code == 200
        assert tilt.model.tiltfile_args == ["--a", "b"]
        assert (await client.post(url, json={"x": 1}, headers=auth(tilt))).status_code == 400


# --------------------------------------------------------------------------- demo


async def test_demo_activity_keeps_the_stream_alive() -> None:
    async with FakeTilt() as tilt, stream(tilt) as ws, anyio.create_task_group() as tg:
        await recv(ws)
        tg.start_soon(lambda: run_demo_activity(tilt, speed=100))
        frames = await recv_until(ws, status_of("ok", "ok"))
        assert any(t.startswith("tick ") for t in texts(frames))
        tg.cancel_scope.cancel()
