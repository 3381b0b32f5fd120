"""Wait conditions, pure: which build counts as the one we triggered."""

from __future__ import annotations

from dataclasses import replace

from bridge.core.logbuffer import parse_time_us
from bridge.tilt.view import BuildRecord, CurrentBuild, Resource
from bridge.waiting import Baseline, evaluate

T = "2026-11-27T10:00:{:02d}.000000Z"


def res(
    history: list[tuple[int, str | None]], current: int | None = None, **kw: object
) -> Resource:
    builds = tuple(
        BuildRecord(
            span_id=f"build:{i}", start_time=T.format(s), finish_time=T.format(s), error=err
        )
        for i, (s, err) in enumerate(history)
    )
    cur = (
        CurrentBuild(span_id="build:x", start_time=T.format(current))
        if current is not None
        else None
    )
    fields: dict[str, object] = {"update_status": "ok", **kw}
    return Resource(name="web", build_history=builds, current_build=cur, **fields)  # type: ignore[arg-type]


def test_a_trigger_does_not_take_the_build_running_when_it_was_sent() -> None:
    before = res([(10, None)], current=20, update_status="in_progress")
    base = Baseline.before_trigger(before, parse_time_us(T.format(21)), skew_us=0)
    # the running build ends (its start is the baseline): not ours
    assert evaluate(res([(20, None), (10, None)]), "web", "build_finished", base) is None
    # a build that started before the trigger but was not in our cache yet: not ours either
    assert evaluate(res([(15, None), (10, None)]), "web", "build_finished", base) is None
    # the triggered build
    done = evaluate(res([(22, None), (20, None)]), "web", "build_finished", base)
    assert done is not None
    assert done.ok


def test_a_failed_triggered_build_reports_its_error() -> None:
    base = Baseline.before_trigger(res([(10, None)]), parse_time_us(T.format(11)), skew_us=0)
    out = evaluate(res([(12, "exit status 3"), (10, None)]), "web", "build_finished", base)
    assert out is not None
    assert (out.ok, out.reason) == (False, "build failed: exit status 3")


def test_a_queued_build_keeps_the_wait_open() -> None:
    base = Baseline.before_trigger(res([(10, None)]), parse_time_us(T.format(11)), skew_us=0)
    queued = replace(res([(12, None), (10, None)]), queued=True)
    assert evaluate(queued, "web", "build_finished", base) is None


def test_ready_fails_fast_on_an_error_with_nothing_building() -> None:
    broken = replace(res([(10, "boom")]), update_status="error")
    out = evaluate(broken, "web", "ready", Baseline.of(broken))
    assert out is not None
    assert not out.ok
    rebuilding = replace(broken, queued=True)
    assert evaluate(rebuilding, "web", "ready", Baseline.of(broken)) is None


def test_disabled_and_removed_resources_end_the_wait() -> None:
    gone = evaluate(None, "web", "ready", Baseline(None, False))
    assert gone is not None
    assert "no longer exists" in gone.reason
    off = evaluate(
        replace(res([]), disable_state="Disabled"), "web", "ready", Baseline(None, False)
    )
    assert off is not None
    assert "disabled" in off.reason
