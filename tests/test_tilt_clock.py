"""Tilt's clock may be off ours (a drifted VM, another host). The bridge measures the offset
from Tilt's own HTTP ``Date`` at connect and counts ``since=5m`` back from Tilt's now, so
recent lines are found whichever way the clocks disagree."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from anyio.abc import SocketStream

from bridge.control import Controller
from bridge.core import present
from bridge.settings import TokenSource
from bridge.testing import FakeTilt
from bridge.tilt.client import TiltHTTP, server_offset_s
from tests.harness import raw_server, stack

pytestmark = pytest.mark.anyio

SHIFTS = [-600.0, 0.0, 600.0]


def test_the_offset_is_read_from_an_http_date_header() -> None:
    now = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC).timestamp()
    assert server_offset_s("Tue, 01 Dec 2026 09:50:00 GMT", now) == pytest.approx(-599.5)
    assert server_offset_s("Tue, 01 Dec 2026 10:00:00 GMT", now) == pytest.approx(0.5)
    assert server_offset_s(None, now) is None
    assert server_offset_s("not a date", now) is None


@pytest.mark.parametrize("shift_s", SHIFTS)
async def test_since_counts_back_from_tilts_now(shift_s: float) -> None:
    def tilt_clock() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=shift_s)

    async with FakeTilt(clock=tilt_clock) as tilt, stack(tilt) as s:
        state = await s.connected()
        assert state.connection.tilt_clock_offset_s == pytest.approx(shift_s, abs=2.0)
        before = s.store.logs.line_count("manual")
        tilt.trigger("manual")
        await s.until(lambda _: s.store.logs.line_count("manual") > before)
        out = present.logs(s.store.state, s.store.logs, time.time(), resource="manual", since="60s")
        assert out.shown >= 1, f"no line of the last minute with Tilt's clock {shift_s:+} s off"
        # and the old recorded lines (hours back on Tilt's clock) stay out
        assert out.shown < s.store.logs.line_count("manual")


# -- click times: never behind Tilt's now -----------------------------------------------


async def test_a_click_is_stamped_at_the_latest_time_tilts_date_allows() -> None:
    """``Date`` says second S; Tilt's now may be anywhere in [S, S + 1). The click stamp
    takes the end (against the moment the request was sent), and each click is after
    the one before, so Tilt's "is this click newer than the last I processed" holds."""
    ours = [1_000_000.9]

    async def answer(stream: SocketStream) -> None:
        await stream.send(
            b"HTTP/1.1 200 OK\r\nDate: Mon, 12 Jan 1970 13:46:40 GMT\r\n"  # 1_000_000 s
            b"Content-Length: 4\r\n\r\ncsrf"
        )

    async with raw_server(answer) as url:
        http = TiltHTTP(url, TokenSource(), timeout_s=5, clock=lambda: ours[0])
        assert await http.fetch_csrf() == "csrf"
    assert http.clock_offset_s == pytest.approx(-0.4)  # the middle of second S
    first = http._click_time()
    second = http._click_time()
    assert first == "1970-01-12T13:46:41.000000Z"  # S + 1: not a microsecond behind Tilt
    assert second == "1970-01-12T13:46:41.000001Z"


@pytest.mark.parametrize("shift_s", [0.0, 0.45, 0.9, -600.7])
async def test_disable_then_enable_at_once_both_take_whatever_tilts_clock(shift_s: float) -> None:
    """The fake Tilt acts on a toggle click only if it is after the previous click's
    processing time on Tilt's clock, as Tilt's ToggleButton reconciler does."""

    def tilt_clock() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=shift_s)

    async with FakeTilt(clock=tilt_clock) as tilt, stack(tilt) as s:
        await s.connected()
        control = Controller(s.store, s.http)
        for _ in range(3):
            (off,) = await control.set_enabled(["manual"], False)
            assert off.confirmed, f"disable not taken with Tilt's clock {shift_s:+} s off"
            (on,) = await control.set_enabled(["manual"], True)
            assert on.confirmed, f"enable not taken with Tilt's clock {shift_s:+} s off"
