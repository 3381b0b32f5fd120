"""The log buffer on its own: segments, checkpoints, progress lines, fair eviction, queries."""

from __future__ import annotations

import gc
import re
import sys
import tracemalloc

import pytest

from bridge.core.logbuffer import (
    LINE_OVERHEAD,
    MAX_LINE_CHARS,
    LogBuffer,
    LogQuery,
    parse_time_us,
    span_source,
    strip_ansi,
)
from bridge.tilt.view import LogList, Segment

SPANS = {"build:1": "api", "localserve:1": "api", "build:2": "web", "pod:db:db-0": "db"}


def seg(span: str, text: str, t: int = 0, **kw: object) -> Segment:
    return Segment(span, f"2026-11-27T10:00:{t:02d}.000000Z", text, **kw)  # type: ignore[arg-type]


def frame(segments: list[Segment], frm: int, to: int | None = None) -> LogList:
    return LogList(
        spans=SPANS,
        segments=tuple(segments),
        from_checkpoint=frm,
        to_checkpoint=frm + len(segments) if to is None else to,
    )


def texts(buf: LogBuffer, resource: str | None = None) -> list[str]:
    lines = list(buf.newest_first(None if resource is None else [resource]))
    return [x.text for x in reversed(lines)]


def test_partial_segments_join_into_one_line_per_span_and_level() -> None:
    buf = LogBuffer()
    buf.apply(
        frame(
            [seg("build:1", "Build Fa"), seg("build:2", "web line\n"), seg("build:1", "iled: x\n")],
            0,
        )
    )
    assert texts(buf, "api") == ["Build Failed: x"]
    assert texts(buf, "web") == ["web line"]
    # a different level on the same span starts a new line
    buf.apply(frame([seg("build:1", "warn", level="WARN"), seg("build:1", "info\n")], 3))
    assert texts(buf, "api") == ["Build Failed: x", "warn", "info"]


def test_an_unterminated_line_is_visible_at_once() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", "Build Failed: exit status 3", level="ERROR", anchor=True)], 0))
    (line,) = buf.newest_first(["api"])
    assert (line.text, line.level, line.anchor, line.source) == (
        "Build Failed: exit status 3",
        "ERROR",
        True,
        "build",
    )


def test_progress_lines_are_overwritten_in_place() -> None:
    buf = LogBuffer()
    buf.apply(
        frame([seg("build:1", "pulling 10%\n", progress_id="p1"), seg("build:1", "other\n")], 0)
    )
    buf.apply(frame([seg("build:1", "pulling 90%\n", 1, progress_id="p1")], 2))
    assert texts(buf, "api") == ["pulling 90%", "other"]
    assert buf.stats().lines == 2


def test_checkpoints_append_drop_overlap_and_survive_a_resend() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", f"{i}\n", i) for i in range(5)], 0))
    buf.apply(frame([seg("build:1", f"{i}\n", i) for i in range(3, 7)], 3))  # overlap of 2
    assert texts(buf) == [str(i) for i in range(7)]
    # Tilt truncated: survivors resent under new numbers (from > last_to)
    buf.apply(frame([seg("build:1", f"{i}\n", i) for i in range(4, 9)], 20))
    assert texts(buf) == [str(i) for i in range(9)]
    # a reconnect resends the whole store
    buf.new_connection()
    buf.apply(frame([seg("build:1", f"{i}\n", i) for i in range(2, 10)], 0))
    assert texts(buf) == [str(i) for i in range(10)]


def test_a_new_tilt_process_keeps_history_and_takes_every_new_line() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", "old\n", 5)], 0))
    buf.new_process()
    buf.apply(frame([seg("build:1", "old\n", 5), seg("build:1", "new\n", 6)], 0))
    assert texts(buf) == ["old", "old", "new"]


def test_one_noisy_resource_cannot_evict_the_others() -> None:
    budget = 64 * 1024
    buf = LogBuffer(budget)
    buf.apply(frame([seg("build:2", "web says hi\n"), seg("pod:db:db-0", "db ready\n")], 0))
    noisy = [seg("build:1", f"spam {i:05d} {'x' * 100}\n", i % 60) for i in range(5000)]
    buf.apply(frame(noisy, 2))
    assert texts(buf, "web") == ["web says hi"]
    assert texts(buf, "db") == ["db ready"]
    stats = buf.stats()
    assert stats.bytes <= budget
    assert stats.evicted_lines > 4000
    assert texts(buf, "api")[-1].startswith("spam 04999")  # newest kept


def test_eviction_is_fair_between_two_noisy_resources() -> None:
    buf = LogBuffer(64 * 1024)
    lines = []
    for i in range(4000):
        lines.append(seg("build:1", f"a{i} {'x' * 60}\n"))
        lines.append(seg("build:2", f"w{i} {'x' * 60}\n"))
    buf.apply(frame(lines, 0))
    api, web = buf.line_count("api"), buf.line_count("web")
    assert abs(api - web) <= max(api, web) * 0.2
    assert buf.stats().bytes <= 64 * 1024


def test_cost_estimate_is_the_text_object_plus_overhead() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", "abc\n")], 0))
    assert buf.stats().bytes == sys.getsizeof("abc") + LINE_OVERHEAD


def test_grep_before_tail_with_context() -> None:
    buf = LogBuffer()
    buf.apply(
        frame([seg("build:1", f"{'ERROR' if i in (3, 10) else 'ok'} {i}\n") for i in range(15)], 0)
    )
    result = buf.query(LogQuery(tail=1, pattern=re.compile("ERROR"), context=1))
    assert [x.text for x in result.lines] == ["ok 9", "ERROR 10", "ok 11"]
    assert result.more_before is True
    both = buf.query(LogQuery(tail=5, pattern=re.compile("ERROR"), context=0))
    assert [x.text for x in both.lines] == ["ERROR 3", "ERROR 10"]
    assert both.more_before is False


def test_level_source_and_since_filters() -> None:
    buf = LogBuffer()
    buf.apply(
        frame(
            [
                seg("build:1", "b\n", 1),
                seg("localserve:1", "r\n", 2),
                seg("localserve:1", "w\n", 3, level="WARN"),
                seg("cmd:api:update", "u\n", 4),
            ],
            0,
        )
    )
    q = buf.query(LogQuery(sources={"runtime"}))
    assert [x.text for x in q.lines] == ["r", "w", "u"]
    q = buf.query(LogQuery(levels={"WARN", "ERROR"}))
    assert [x.text for x in q.lines] == ["w"]
    q = buf.query(LogQuery(since_us=parse_time_us("2026-11-27T10:00:03.000000Z")))
    assert [x.text for x in q.lines] == ["w", "u"]


@pytest.mark.parametrize(
    ("span", "source"),
    [
        ("build:7", "build"),
        ("cmdimage:web-image", "build"),
        ("cmd:web:update", "runtime"),
        ("tiltfile:(Tiltfile):1", "runtime"),
        ("localserve:3", "runtime"),
        ("pod:web:web-1", "runtime"),
        ("dc:db", "runtime"),
        ("cmd:ok-hello", "runtime"),
        ("disabletoggle-web", "runtime"),
    ],
)
def test_span_source_is_tilts_rule(span: str, source: str) -> None:
    """Tilt's isBuildSpanID: build iff the id starts with build: or cmdimage:."""
    assert span_source(span) == source


def test_ansi_codes_are_stripped() -> None:
    assert (
        strip_ansi("\x1b[31mred\x1b[0m and \x1b]8;;http://x\x07link\x1b]8;;\x07") == "red and link"
    )


def test_budget_must_be_sane() -> None:
    with pytest.raises(ValueError, match="at least 64 KiB"):
        LogBuffer(1000)


def test_span_tables_stay_bounded_over_many_builds() -> None:
    from bridge.core.logbuffer import MAX_SPANS

    buf = LogBuffer()
    for n in range(0, MAX_SPANS + 2000, 1000):
        spans = {f"build:{i}": "api" for i in range(n, n + 1000)}
        buf.apply(
            LogList(
                spans=spans,
                segments=(seg(f"build:{n}", f"b{n}\n"),),
                from_checkpoint=n // 1000,
                to_checkpoint=n // 1000 + 1,
            )
        )
    assert len(buf._span_info) <= MAX_SPANS + 1000
    assert texts(buf, "api")[-1] == f"b{MAX_SPANS + 1000}"


def test_a_build_event_line_passes_every_source_and_level_filter() -> None:
    """As Tilt's LogFilter.Matches: 'Initial Build' shows which lines belong to a build."""
    buf = LogBuffer()
    buf.apply(
        frame(
            [
                seg("build:1", "Initial Build\n", 1, build_event="init"),
                seg("build:1", "compiling\n", 2),
                seg("localserve:1", "serving\n", 3),
            ],
            0,
        )
    )
    runtime = buf.query(LogQuery(sources={"runtime"}))
    assert [x.text for x in runtime.lines] == ["Initial Build", "serving"]
    errors = buf.query(LogQuery(levels={"ERROR"}))
    assert [x.text for x in errors.lines] == ["Initial Build"]


@pytest.mark.parametrize("char", ["a", "é", "漢", "😀", "a漢😀"])
def test_the_budget_counts_the_memory_really_held_for_any_script(char: str) -> None:
    """stats().bytes is within 10% of what tracemalloc sees the held lines take, for
    ASCII, Latin-1, CJK (2 bytes a char) and emoji (4 bytes a char) alike."""
    for width in (0, 40, 400):
        text = (char * width)[:width]
        segments = [seg("build:1", f"{text}{i}\n", i % 60) for i in range(5000)]
        log_list = frame(segments, 0)
        gc.collect()
        tracemalloc.start()
        try:
            buf = LogBuffer(1 << 30)
            before = tracemalloc.get_traced_memory()[0]
            buf.apply(log_list)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert abs(held - buf.stats().bytes) <= 0.1 * held, (char, width)


def test_a_line_longer_than_the_storage_cap_is_stored_cut_with_its_length() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", "x" * (MAX_LINE_CHARS + 5000) + "\n")], 0))
    (line,) = buf.newest_first(["api"])
    assert line.text.startswith("x" * MAX_LINE_CHARS)
    assert f"line cut: {MAX_LINE_CHARS + 5000} chars long" in line.text
    assert len(line.text) < MAX_LINE_CHARS + 100


def test_a_line_continued_past_the_cap_keeps_its_head_and_counts_its_length() -> None:
    buf = LogBuffer()
    chunk = "y" * 10_000
    for i in range(10):
        buf.apply(frame([seg("build:1", chunk)], i))
    buf.apply(frame([seg("build:1", "end\n")], 10))
    buf.apply(frame([seg("build:1", "next\n")], 11))
    assert texts(buf, "api")[1] == "next"
    first = texts(buf, "api")[0]
    assert first.startswith("y" * MAX_LINE_CHARS)
    assert "line cut: 100003 chars long" in first
    assert buf.stats().bytes == sum(sys.getsizeof(t) + LINE_OVERHEAD for t in texts(buf))


def test_a_line_continued_over_forty_thousand_segments_in_one_frame_is_whole() -> None:
    buf = LogBuffer()
    parts = [seg("build:1", "ab") for _ in range(40_000)] + [seg("build:1", "!\n")]
    buf.apply(frame(parts, 0))
    (line,) = buf.newest_first(["api"])
    assert line.text == ("ab" * 40_000)[:MAX_LINE_CHARS] + " … [line cut: 80001 chars long, " + (
        f"first {MAX_LINE_CHARS} kept]"
    )
    assert buf.stats().lines == 1
    assert buf.stats().bytes == sys.getsizeof(line.text) + LINE_OVERHEAD


def test_an_open_line_is_readable_between_frames_and_continues_after() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", "Build Fa"), seg("build:1", "il")], 0))
    assert texts(buf, "api") == ["Build Fail"]
    buf.apply(frame([seg("build:1", "ed\n"), seg("build:1", "after\n")], 2))
    assert texts(buf, "api") == ["Build Failed", "after"]


def test_lines_of_a_new_tilt_process_start_at_process_start() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", "old\n", 5)], 0))
    assert buf.process_start() == 0
    buf.new_process()
    buf.apply(frame([seg("build:1", "new\n", 6)], 0))
    current = buf.query(LogQuery(min_seq=buf.process_start()))
    assert [x.text for x in current.lines] == ["new"]
    assert [x.text for x in buf.query(LogQuery()).lines] == ["old", "new"]


def test_around_gives_the_lines_either_side_of_one_line() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", f"{i}\n") for i in range(10)], 0))
    line = next(x for x in buf.newest_first(["api"]) if x.text == "5")
    assert [x.text for x in buf.around(line, 2)] == ["3", "4", "5", "6", "7"]


def test_a_snapshot_query_does_not_see_later_lines() -> None:
    buf = LogBuffer()
    buf.apply(frame([seg("build:1", "a\n")], 0))
    snap = buf.snapshot(LogQuery())
    buf.apply(frame([seg("build:1", "b\n")], 1))
    assert [x.text for x in snap.run().lines] == ["a"]
