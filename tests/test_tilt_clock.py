"""Tilt's clock may be off ours (a drifted VM, another host). The bridge measures the offset
from Tilt's own HTTP ``Date`` at connect and counts ``since=5m`` back from Tilt's now, so
recent lines are found whichever way the clocks disagree."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from bridge.core import present
from bridge.testing import FakeTilt
from bridge.tilt.client import server_offset_s
from tests.harness import stack

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
