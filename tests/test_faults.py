"""Fault injection against the fake Tilt: restarts, drops, garbage, floods. No sleeps."""

from __future__ import annotations

import json

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.errors import FrameError
from bridge.store import Store
from bridge.testing import FakeTilt, load_recording
from bridge.tilt.view import decode_view, decode_view_object

from .harness import Stack, stack

pytestmark = pytest.mark.anyio


def same_as_tilt(s: Stack) -> bool:
    oracle = decode_view_object(s.tilt.view())
    want = {r.name: r for r in oracle.resources or ()}
    return (
        dict(s.store.state.resources) == want
        and s.store.state.tilt_start_time == s.tilt.tilt_start_time
    )


async def test_a_hundred_restarts_in_a_row_leave_the_cache_equal_to_tilt() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        for i in range(100):
            old_csrf = tilt.csrf
            await tilt.restart()
            assert tilt.csrf != old_csrf
            await s.until(lambda st: st.connection.connected and same_as_tilt(s), within_s=10)
            assert s.store.state.connection.connections == i + 2
        texts = [x.text for x in s.store.logs.newest_first()]
        # each Tilt process logged one "Tilt started" line; none was duplicated
        assert texts.count(f"Tilt started on {tilt.base_url}/") == 100
        assert texts.count("Tilt started on http://127.0.0.1:10350/") == 1  # the recorded one
        refused = [r for r in tilt.requests if r.path == "/ws/view" and r.status == 403]
        assert len(refused) <= 100  # a stale csrf costs at most one refused handshake each


async def test_a_drop_in_the_middle_of_a_big_frame_loses_nothing_tilt_still_has() -> None:
    async with FakeTilt(max_log_bytes=None) as tilt, stack(tilt) as s:
        await s.connected()
        segments = [
            {
                "spanId": "build:1",
                "time": "2026-11-26T22:00:00.000001Z",
                "text": f"line {i} {'y' * 500}\n",
            }
            for i in range(16_000)
        ]
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                tilt.send,
                {
                    "logList": {
                        "spans": {"build:1": {"manifestName": "ticker"}},
                        "segments": segments,
                    }
                },
            )
            await tilt.drop()
        await s.until(lambda st: st.connection.connections >= 2 and st.connection.connected)
        # after the reconnect the complete view resent everything: all lines, once
        await s.until(lambda st: s.store.logs.line_count("ticker") >= 16_000, within_s=30)
        ticker = [
            x.text for x in s.store.logs.newest_first(["ticker"]) if x.text.startswith("line ")
        ]
        assert len(ticker) == len(set(ticker)) == 16_000


async def test_close_codes_and_refused_connections_are_survived() -> None:
    async with FakeTilt() as tilt, stack(tilt) as s:
        await s.connected()
        await tilt.close(1001, "going away")
        await s.connected(2)
        await tilt.stop()
        await s.until(lambda st: st.connection.state == "disconnected")
        await tilt.start()
        await s.connected(3)
        assert same_as_tilt(s)


# --------------------------------------------------------------------------- garbage frames

RECORDED = [f for c in load_recording("06-tiltfile-edit").connections for f in c.frames]
PARSED = [json.loads(f.raw) for f in RECORDED]
COMPLETE = decode_view(RECORDED[0].raw)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
view_keys = st.sampled_from(
    [
        "uiResources",
        "uiButtons",
        "uiSession",
        "logList",
        "tiltStartTime",
        "isComplete",
        "unknownField",
    ]
)
view_like = st.dictionaries(view_keys, json_values, max_size=5)


@st.composite
def mutated_frames(draw: st.DrawFn) -> str:
    index = draw(st.integers(0, len(RECORDED) - 1))
    raw = RECORDED[index].raw
    kind = draw(st.sampled_from(["truncate", "retype", "random", "bytes"]))
    if kind == "truncate":
        return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    if kind == "retype":
        data = dict(PARSED[index])
        key = draw(st.sampled_from(sorted(data) or ["x"]))
        data[key] = draw(json_values)
        return json.dumps(data)
    if kind == "random":
        return json.dumps(draw(view_like))
    return draw(st.binary(max_size=64)).decode("latin-1")


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_frames(), min_size=1, max_size=3))
def test_any_garbage_is_rejected_or_applied_without_breaking_the_state(frames: list[str]) -> None:
    store = Store()
    store.apply_frame(COMPLETE)
    for raw in frames:
        try:
            view = decode_view(raw)
        except FrameError as exc:
            reason = str(exc)
            assert reason  # a clear reason, never an empty message
            continue
        store.apply_frame(view)
    state = store.state
    assert all(name == res.name for name, res in state.resources.items())
    assert all(name == btn.name for name, btn in state.buttons.items())
    assert store.logs.stats().bytes >= 0
    # and a real complete view afterwards restores exactly Tilt's state
    store.new_connection()
    store.apply_frame(COMPLETE)
    assert dict(store.state.resources) == {r.name: r for r in COMPLETE.resources or ()}
