"""The watcher and HTTP client against a fake Tilt over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from bridge.settings import TokenSource
from bridge.testing import FakeTilt, load_recording
from bridge.tilt.view import decode_view_object

from .harness import stack

pytestmark = pytest.mark.anyio


async def test_first_complete_view_fills_the_cache_exactly() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        state = await s.connected()
        oracle = decode_view_object(tilt.view())
        assert oracle.resources is not None
        assert dict(state.resources) == {r.name: r for r in oracle.resources}
        assert len(state.buttons) == len(oracle.buttons or ())
        assert s.store.logs.line_count() > 100


async def test_deltas_from_a_recording_reach_the_cache() -> None:
    async with FakeTilt(initial="03-failing-build") as tilt, stack(tilt) as s:
        await s.connected()
        await tilt.replay("03-failing-build")
        state = await s.until(
            lambda st: any("Build Failed" in x.text for x in s.store.logs.newest_first(["fail"]))
        )
        assert state.resources["fail"].update_status == "error"


async def test_every_request_carries_the_token_and_no_origin() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        await s.http.trigger("manual")
        await s.until(lambda st: st.resources["manual"].build_history[0].start_time is not None)
    assert tilt.requests
    for req in tilt.requests:
        assert "origin" not in req.headers
        if req.path.startswith(("/api/", "/proxy/")):
            assert req.headers.get("x-tilt-token") == tilt.token


async def test_a_1006_drop_reconnects_fast_with_no_duplicate_logs() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        before = [(x.span_id, x.time_us, x.text) for x in s.store.logs.newest_first()]
        await tilt.drop()
        await s.connected(2)
        after = [(x.span_id, x.time_us, x.text) for x in s.store.logs.newest_first()]
        assert after == before
        assert s.store.state.connection.connections == 2


async def test_a_tilt_restart_brings_a_new_csrf_and_resets_the_state() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        old_csrf, old_start = tilt.csrf, s.store.state.tilt_start_time
        await tilt.restart()
        state = await s.until(
            lambda st: st.tilt_start_time != old_start and st.connection.connected
        )
        assert tilt.csrf != old_csrf
        assert state.tilt_start_time == tilt.tilt_start_time
        texts = [x.text for x in s.store.logs.newest_first()]
        assert texts.count(f"Tilt started on {tilt.base_url}/") == 1


async def test_tilt_down_for_a_while_then_back() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: tilt.restart(down_s=0.3))
            await s.until(lambda st: st.connection.state == "disconnected")
            assert len(s.store.state.resources) == 16  # last known state kept
        await s.until(
            lambda st: st.connection.connected and st.tilt_start_time == tilt.tilt_start_time
        )


async def test_wrong_token_is_a_clear_auth_failure_that_never_shows_the_token() -> None:
    async with FakeTilt() as tilt:
        with capture_logs() as logs:
            async with stack(tilt, token="wrong-token-0000") as s:
                state = await s.until(lambda st: st.connection.state == "auth_failed")
        assert state.connection.last_error is not None
        assert "403" in state.connection.last_error
        assert "TILT_TOKEN" in state.connection.last_error
        blob = json.dumps(logs, default=str) + (state.connection.last_error or "")
        assert "wrong-token-0000" not in blob
        assert tilt.token is not None
        assert tilt.token not in blob


async def test_token_file_is_re_read_after_a_403(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stale-token\n")
    async with FakeTilt() as tilt, stack(tilt, token_source=TokenSource(path=token_file)) as s:
        await s.until(lambda st: st.connection.state == "auth_failed")
        assert tilt.token is not None
        token_file.write_text(tilt.token + "\n")
        await s.connected()


async def test_a_16_mb_frame_is_accepted() -> None:
    async with FakeTilt(max_log_bytes=None) as tilt, stack(tilt) as s:
        await s.connected()
        line = "x" * 1000
        segments = [
            {"spanId": "build:1", "time": "2026-11-26T21:59:26.000001Z", "text": f"{i} {line}\n"}
            for i in range(16_000)
        ]
        await tilt.send(
            {"logList": {"spans": {"build:1": {"manifestName": "ticker"}}, "segments": segments}}
        )
        await s.until(lambda st: s.store.logs.line_count("ticker") > 16_000, within_s=30)
        assert s.store.state.connection.connections == 1


async def test_malformed_and_unknown_frames_are_skipped_and_the_stream_goes_on() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        with capture_logs() as logs:
            await tilt.send_raw("{truncated")
            await tilt.send_raw('{"uiResources": 12}')
            await tilt.send_raw('{"someNewField": {"x": 1}, "uiResources": []}')
            await tilt.send(
                {
                    "uiResources": [
                        {"metadata": {"name": "brand-new"}, "status": {"updateStatus": "ok"}}
                    ]
                }
            )
            await s.until(lambda st: "brand-new" in st.resources)
        skipped = [e for e in logs if e["event"] == "tilt.frame.skipped"]
        assert len(skipped) == 2
        assert s.store.state.connection.bad_frames == 2
        assert s.store.state.connection.connections == 1


async def test_a_server_that_accepts_and_says_nothing_is_abandoned_and_retried() -> None:
    async with FakeTilt(silent=True) as tilt:
        with capture_logs() as logs:
            async with stack(tilt, first_frame_timeout_s=0.2) as s:
                await tilt.wait_connected(1)
                tilt.silent = False  # the next connection gets a view
                await s.connected()
        assert any("sent no view within 0.2s" in str(e.get("error")) for e in logs)


async def test_recorded_restart_sequence_replays() -> None:
    rec = load_recording("09-tilt-restart")
    assert len(rec.connections) == 2


async def test_a_hung_server_is_noticed_by_ping_deadline_and_retried() -> None:
    async with FakeTilt() as tilt:
        tilt.hung = True  # accepts, then stops reading: not even pongs
        with capture_logs() as logs:
            async with stack(
                tilt, ping_interval_s=0.1, ping_timeout_s=0.1, first_frame_timeout_s=30
            ) as s:
                await tilt.wait_connected(1)
                tilt.hung = False
                await s.connected()
        closed = [e for e in logs if e["event"] == "tilt.stream.closed"]
        assert closed
        assert "stopped answering pings" in closed[0]["error"]
