"""The bounded per-resource log buffer, fed by Tilt's ``logList``.

Tilt sends logs as *segments*: at most one line each; a segment without a
trailing newline is continued by the next segment of the same span and level.
This module joins segments into lines, resolves each line's resource from the
span table, overwrites ``progressID`` lines, and applies Tilt's checkpoints
exactly (see ``docs`` in ``tilt-protocol.md`` §4):

* ``from == last_to``: append;
* ``from < last_to``: drop the overlap;
* ``from > last_to``: Tilt truncated its store and resent the survivors under
  new numbers; a new connection resends the whole store too. In both cases we
  keep our own history and append only what follows the last segment we hold
  (found by exact match, else by time), so nothing is duplicated and nothing
  Tilt still has is lost;
* a new Tilt process (changed ``tiltStartTime``): numbering restarts; every
  segment is new. Older lines stay as history.

This is the one mutable part of the state: a :class:`LogBuffer` is only changed
by :meth:`LogBuffer.apply`, which is synchronous, so readers on the same event
loop never see half an update. Everything else in the snapshot is immutable.

Memory is bounded by ``budget_bytes``: each line costs the memory its text really
holds (``sys.getsizeof``: 1, 2 or 4 bytes a character, by script) plus a fixed
overhead (:data:`LINE_OVERHEAD`, measured with ``tracemalloc`` in the tests). Over
budget, the heaviest resource loses its oldest lines first, so one noisy resource
cannot evict the others. A line is stored at most :data:`MAX_LINE_CHARS` long (cut,
with a marker giving its full length); a line continued over many segments is joined
once per frame, not once per segment.

Lines remember which Tilt process wrote them: :meth:`LogBuffer.process_start` is the
first sequence number of the current process, so answers can mark the seam and ask
for the current process only.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import re
import sys
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from bridge.tilt.view import LogList, Segment

LINE_OVERHEAD: Final = 180
"""Bytes a held line costs beyond ``sys.getsizeof`` of its text: the line object (9
slots, with its GC header), its ``seq`` and ``time_us`` ints and its deque slot; span,
resource and level strings are shared. Checked with ``tracemalloc`` in
``tests/test_logbuffer.py`` (within 10% for every script)."""

MAX_LINE_CHARS: Final = 64 * 1024
"""Longest line stored; the rest is cut and replaced by :func:`cut_marker`."""

DEFAULT_BUDGET: Final = 32 * 1024 * 1024
"""Default log budget: 32 MiB, sixteen times Tilt's own 2 MB store."""

MAX_SPANS: Final = 20_000
"""Span ids remembered before the table is rebuilt from the spans frames carry."""

GLOBAL: Final = ""
"""Resource key of lines that belong to no resource (Tilt's global log)."""

ANSI_RE: Final = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
)

_BUILD_PREFIXES: Final = ("build:", "cmdimage:")


@functools.lru_cache(maxsize=4096)
def span_source(span_id: str) -> str:
    """``build`` or ``runtime``: Tilt's own rule (``isBuildSpanID`` in
    ``internal/hud/client/log_filter.go``, used by ``tilt logs --source`` and the web UI):
    a span is *build* iff its id starts with ``build:`` or ``cmdimage:``. Everything else,
    a local_resource's ``cmd:<res>:update`` and the Tiltfile's spans included, is runtime."""
    return "build" if span_id.startswith(_BUILD_PREFIXES) else "runtime"


def cut_marker(chars: int) -> str:
    """What replaces the end of a line cut at :data:`MAX_LINE_CHARS`."""
    return f" … [line cut: {chars} chars long, first {MAX_LINE_CHARS} kept]"


def _capped(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + cut_marker(len(text))


_SECONDS: dict[str, int] = {}
_LEVELS: Final = {lv: lv for lv in ("INFO", "WARN", "ERROR", "DEBUG", "VERBOSE", "NONE")}


def _seconds(head: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) → epoch seconds, cached (0 if unparsable)."""
    seconds = _SECONDS.get(head)
    if seconds is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        try:
            seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
        except ValueError:
            seconds = 0
        _SECONDS[head] = seconds
    return seconds


def parse_time_us(value: str) -> int:
    """RFC 3339 time from Tilt → microseconds since the epoch (0 if unparsable).

    Fast path for Tilt's usual ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: the whole seconds are
    parsed once per distinct second (cached), the fraction with ``int``."""
    if len(value) == 27 and value[19] == "." and value[26] == "Z":
        seconds = _seconds(value[:19])
        frac = value[20:26]
        if seconds and frac.isdigit():
            return seconds * 1_000_000 + int(frac)
    if not value:
        return 0
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1_000_000)
    except ValueError:
        return 0


def format_time_us(value: int) -> str:
    return datetime.fromtimestamp(value / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def strip_ansi(text: str) -> str:
    return ANSI_RE.sub("", text) if "\x1b" in text else text


class LogLine:
    """One line of a resource's log. Text has no trailing newline."""

    __slots__ = (
        "anchor",
        "build_event",
        "level",
        "resource",
        "seq",
        "source",
        "span_id",
        "text",
        "time_us",
    )

    def __init__(
        self,
        seq: int,
        resource: str,
        span_id: str,
        time_us: int,
        level: str,
        source: str,
        text: str,
        anchor: bool = False,
        build_event: bool = False,
    ) -> None:
        self.seq = seq
        self.resource = resource
        self.span_id = span_id
        self.time_us = time_us
        self.level = level
        self.source = source
        self.text = text
        self.anchor = anchor
        self.build_event = build_event  # the first line of a build: matches every filter

    @property
    def time(self) -> str:
        return format_time_us(self.time_us)

    def cost(self) -> int:
        return sys.getsizeof(self.text) + LINE_OVERHEAD

    def __repr__(self) -> str:
        return f"LogLine({self.seq}, {self.resource!r}, {self.level}, {self.text!r})"


class Searcher(Protocol):
    """What ``grep`` needs of a compiled pattern (``re.Pattern`` fits; the MCP layer
    passes a time-bounded one)."""

    def search(self, string: str, /) -> object: ...


@dataclass(frozen=True, slots=True)
class LogDelta:
    """What one :meth:`LogBuffer.apply` changed."""

    resources: frozenset[str]
    lines_added: int
    segments_skipped: int
    mode: str  # append | overlap | resend | restart | none


@dataclass(frozen=True, slots=True)
class LogQuery:
    resources: Collection[str] | None = None  # None = all, interleaved
    tail: int = 100
    since_us: int = 0
    levels: Collection[str] | None = None
    sources: Collection[str] | None = None
    pattern: Searcher | None = None
    context: int = 0
    min_seq: int = 0  # only lines from this sequence number on (the current Tilt process)

    @property
    def scans(self) -> bool:
        """True if answering may read far more lines than ``tail`` (a filter or a grep)."""
        return bool(
            self.pattern is not None
            or self.levels is not None
            or self.sources is not None
            or self.since_us
            or self.min_seq
        )


@dataclass(frozen=True, slots=True)
class LogResult:
    lines: tuple[LogLine, ...]  # oldest first
    more_before: bool  # older lines matching the query exist but were not returned


@dataclass(frozen=True, slots=True)
class LogStats:
    lines: int
    bytes: int
    budget_bytes: int
    resources: int
    evicted_lines: int


class _ResourceLog:
    __slots__ = ("bytes", "lines")

    def __init__(self) -> None:
        self.lines: deque[LogLine] = deque()
        self.bytes = 0


class _Open:
    """A line still waiting for its newline: the stored head in parts (joined once per
    frame), and its full length so far (for the cut marker)."""

    __slots__ = ("chars", "dirty", "kept", "line", "parts")

    def __init__(self, line: LogLine, head: str, chars: int) -> None:
        self.line = line
        self.chars = chars  # full length, cut or not
        self.kept = min(chars, MAX_LINE_CHARS)  # characters of text held
        self.parts = [head[: self.kept]]
        self.dirty = False

    def add(self, text: str) -> bool:
        """Continue the line; True if it just became dirty (to be joined at frame end)."""
        self.chars += len(text)
        room = MAX_LINE_CHARS - self.kept
        if room > 0 and text:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        if self.dirty:
            return False
        self.dirty = True
        return True

    def join(self) -> str | None:
        """The line's text now, or None if nothing changed since the last join."""
        if not self.dirty:
            return None
        self.dirty = False
        head = "".join(self.parts)
        self.parts = [head]
        return head if self.chars == self.kept else head + cut_marker(self.chars)


class LogBuffer:
    """Bounded, per-resource log lines with Tilt's checkpoint rules."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET) -> None:
        if budget_bytes < 64 * 1024:
            raise ValueError(f"log budget must be at least 64 KiB, got {budget_bytes} bytes")
        self.budget_bytes = budget_bytes
        self._logs: dict[str, _ResourceLog] = {}
        self._bytes = 0
        self._count = 0
        self._next_seq = 0
        self._evicted = 0
        # per Tilt process / connection
        self._spans: dict[str, str] = {}
        self._span_info: dict[str, tuple[str, str, str]] = {}
        self._open: dict[str, _Open] = {}  # span -> line still waiting for its newline
        self._unflushed: list[_Open] = []  # open lines with parts not yet joined
        self._progress: dict[tuple[str, str], LogLine] = {}
        self._process_starts: deque[int] = deque(maxlen=64)  # first seq of each new process
        self._last_to: int | None = None
        self._last_key: tuple[str, str, str] | None = None
        self._last_time_us = 0

    # ------------------------------------------------------------------ ingest

    def new_connection(self) -> None:
        """The next frame is the first of a new websocket connection (a full resend)."""
        self._last_to = None

    def new_process(self) -> None:
        """Tilt restarted: checkpoints and spans restart; held lines stay as history."""
        self._flush()
        self._spans = {}
        self._span_info = {}
        self._open = {}
        self._process_starts.append(self._next_seq + 1)
        self._progress = {}
        self._last_to = None
        self._last_key = None
        self._last_time_us = 0

    def apply(self, log_list: LogList) -> LogDelta:
        """Apply one frame's ``logList``."""
        if log_list.spans:
            self._learn_spans(log_list.spans)
        segments: Sequence[Segment] = log_list.segments
        if not segments and log_list.to_checkpoint == 0:
            return LogDelta(frozenset(), 0, 0, "none")
        total = len(segments)
        if self._last_to is None:
            mode = "resend" if self._last_key is not None else "append"
            segments = self._after_last_held(segments)
        else:
            frm = log_list.from_checkpoint
            if frm == self._last_to:
                mode = "append"
            elif frm < self._last_to:
                mode = "overlap"
                segments = segments[self._last_to - frm :]
            else:
                mode = "resend"
                segments = self._after_last_held(segments)
        self._last_to = max(log_list.to_checkpoint, self._last_to or 0)
        touched, added = self._ingest_all(segments)
        self._flush()
        if segments:
            last = segments[-1]
            self._last_key = (last.span_id, last.time, last.text)
            self._last_time_us = max(self._last_time_us, parse_time_us(last.time))
        if self._bytes > self.budget_bytes:
            self._evict()
        return LogDelta(frozenset(touched), added, total - len(segments), mode)

    def set_budget(self, budget_bytes: int) -> None:
        """Change the budget (several Tilts share one ``--log-budget-mb``); a smaller one
        evicts at once, fairly, as an over-budget frame would."""
        if budget_bytes < 64 * 1024:
            raise ValueError(f"log budget must be at least 64 KiB, got {budget_bytes} bytes")
        self.budget_bytes = budget_bytes
        if self._bytes > self.budget_bytes:
            self._evict()

    def _after_last_held(self, segments: Sequence[Segment]) -> Sequence[Segment]:
        if self._last_key is None:
            return segments
        span, time, text = self._last_key
        for i in range(len(segments) - 1, -1, -1):
            seg = segments[i]
            if seg.time == time and seg.text == text and seg.span_id == span:
                return segments[i + 1 :]
        hwm = self._last_time_us
        return [s for s in segments if parse_time_us(s.time) > hwm]

    def _learn_spans(self, spans: Mapping[str, str]) -> None:
        """Merge the span table; keep one shared string per span id, resource and level,
        so 200 000 held lines do not carry 200 000 copies of the same few names."""
        known = self._span_info
        if len(known) > MAX_SPANS:
            # Spans pile up with every build (build:N). Lines already held carry their
            # resource; Tilt sends the spans a frame refers to with the frame, so the
            # table is rebuilt from what follows. Open lines keep their span.
            keep = set(self._open) | {span for span, _ in self._progress}
            self._span_info = known = {k: v for k, v in known.items() if k in keep}
            self._spans = {k: v for k, v in self._spans.items() if k in keep}
        for span_id, manifest in spans.items():
            info = known.get(span_id)
            if info is not None and info[1] == (manifest or GLOBAL):
                continue  # Tilt v0.37.6 repeats every span in every frame
            resource = sys.intern(manifest) if manifest else GLOBAL
            span_id = sys.intern(span_id)
            known[span_id] = (span_id, resource, span_source(span_id))
            self._spans[span_id] = resource

    def _span(self, span_id: str) -> tuple[str, str, str]:
        """(shared span id, resource, source) for a span id."""
        info = self._span_info.get(span_id)
        if info is None:
            span_id = sys.intern(span_id)
            info = (span_id, self._spans.get(span_id) or GLOBAL, span_source(span_id))
            self._span_info[span_id] = info
        return info

    def _ingest_all(self, segments: Sequence[Segment]) -> tuple[set[str], int]:
        """Ingest segments. The common case (a new complete line, or the start of one, with
        no progressID) is inlined here with locals: a 3.9 MB frame is 20 000 segments.
        Continuations and progress lines take :meth:`_ingest`."""
        logs = self._logs
        open_lines = self._open
        touched: set[str] = set()
        added = 0  # new lines, both paths (returned)
        pending = 0  # fast-path lines not yet counted in self._count
        cost_total = 0  # their bytes, not yet counted in self._bytes
        seq = self._next_seq
        span_info = self._span_info
        levels = _LEVELS
        getsizeof = sys.getsizeof
        last_head = ""
        last_second = 0
        for seg in segments:
            span, time, text, level, anchor, progress_id, build_event = seg
            if progress_id is not None or span in open_lines:
                self._next_seq = seq
                self._bytes += cost_total
                self._count += pending
                cost_total = pending = 0
                resource, is_new = self._ingest(seg)
                seq = self._next_seq
                touched.add(resource)
                added += is_new
                continue
            info = span_info.get(span) or self._span(span)
            span, resource, source = info
            complete = text.endswith("\n")
            if complete:
                text = text[:-2] if text.endswith("\r\n") else text[:-1]
            chars = len(text)
            if chars > MAX_LINE_CHARS:
                text = _capped(text)
            # Tilt's usual time shape, parsed inline: whole seconds once per second.
            time_us = 0
            if len(time) == 27 and time[26] == "Z":
                head = time[:19]
                if head != last_head:
                    last_second = _seconds(head)
                    last_head = head
                frac = time[20:26]
                if last_second and frac.isdigit():
                    time_us = last_second * 1_000_000 + int(frac)
            if not time_us:
                time_us = parse_time_us(time)
            seq += 1
            line = LogLine(
                seq,
                resource,
                span,
                time_us,
                levels.get(level) or level,
                source,
                text,
                anchor,
                build_event is not None,
            )
            log = logs.get(resource)
            if log is None:
                log = logs[resource] = _ResourceLog()
            log.lines.append(line)
            cost = getsizeof(text) + LINE_OVERHEAD
            log.bytes += cost
            cost_total += cost
            pending += 1
            added += 1
            if not complete:
                open_lines[span] = _Open(line, text, chars)
            touched.add(resource)
        self._next_seq = seq
        self._bytes += cost_total
        self._count += pending
        return touched, added

    def _ingest(self, seg: Segment) -> tuple[str, bool]:
        span, resource, source = self._span(seg.span_id)
        text = seg.text
        complete = text.endswith("\n")
        if complete:
            text = text[:-1]
            if text.endswith("\r"):
                text = text[:-1]
        if seg.progress_id is not None:
            previous = self._progress.get((span, seg.progress_id))
            if previous is not None:
                self._replace_text(previous, _capped(text))
                previous.time_us = parse_time_us(seg.time)
                return previous.resource, False
        pending = self._open.get(span)
        if pending is not None:
            if pending.line.level == (_LEVELS.get(seg.level) or seg.level):
                if pending.add(text):
                    self._unflushed.append(pending)
                if complete:
                    del self._open[span]
                    self._flush_one(pending)
                return pending.line.resource, False
            del self._open[span]
            self._flush_one(pending)
        chars = len(text)
        self._next_seq += 1
        line = LogLine(
            seq=self._next_seq,
            resource=resource,
            span_id=span,
            time_us=parse_time_us(seg.time),
            level=_LEVELS.get(seg.level) or seg.level,
            source=source,
            text=_capped(text),
            anchor=seg.anchor,
            build_event=seg.build_event is not None,
        )
        log = self._logs.get(resource)
        if log is None:
            log = self._logs[resource] = _ResourceLog()
        log.lines.append(line)
        cost = line.cost()
        log.bytes += cost
        self._bytes += cost
        self._count += 1
        if not complete:
            self._open[span] = _Open(line, line.text, chars)
        if seg.progress_id is not None:
            self._progress[(span, seg.progress_id)] = line
        return resource, True

    def _flush(self) -> None:
        """Join the parts continued lines received in this frame: once per line and frame,
        so a line continued over 40 000 segments costs linear time, not quadratic."""
        for pending in self._unflushed:
            self._flush_one(pending)
        self._unflushed.clear()

    def _flush_one(self, pending: _Open) -> None:
        text = pending.join()
        if text is not None and self._held(pending.line):
            self._replace_text(pending.line, text)

    def _replace_text(self, line: LogLine, text: str) -> None:
        delta = sys.getsizeof(text) - sys.getsizeof(line.text)
        line.text = text
        log = self._logs[line.resource]
        log.bytes += delta
        self._bytes += delta

    def _evict(self) -> None:
        """Bring the total down to 90% of the budget, fairly: find the one size cap that
        frees enough when applied to the heaviest resources (water-filling), then drop
        each heavier resource's oldest lines down to it. One sort per eviction."""
        target = self.budget_bytes * 9 // 10
        excess = self._bytes - target
        if excess <= 0:
            return
        sizes = sorted((log.bytes for log in self._logs.values()), reverse=True)
        cap = 0.0
        running = 0
        for k, size in enumerate(sizes, start=1):
            running += size
            following = sizes[k] if k < len(sizes) else 0
            if running - k * following >= excess:
                cap = (running - excess) / k
                break
        for log in self._logs.values():
            lines = log.lines
            while lines and log.bytes > cap:
                line = lines.popleft()
                cost = sys.getsizeof(line.text) + LINE_OVERHEAD
                log.bytes -= cost
                self._bytes -= cost
                self._count -= 1
                self._evicted += 1
                pending = self._open.get(line.span_id)
                if pending is not None and pending.line is line:
                    del self._open[line.span_id]
            if not lines:
                log.bytes = 0
        if self._progress:
            self._progress = {k: v for k, v in self._progress.items() if self._held(v)}

    def _held(self, line: LogLine) -> bool:
        log = self._logs.get(line.resource)
        return bool(log and log.lines and log.lines[0].seq <= line.seq)

    # ------------------------------------------------------------------ read

    def resources(self) -> list[str]:
        return sorted(name for name, log in self._logs.items() if log.lines)

    def stats(self) -> LogStats:
        return LogStats(
            lines=self._count,
            bytes=self._bytes,
            budget_bytes=self.budget_bytes,
            resources=sum(1 for log in self._logs.values() if log.lines),
            evicted_lines=self._evicted,
        )

    def knows_span(self, span_id: str) -> bool:
        """Whether Tilt has sent log segments of ``span_id`` (in this Tilt process)."""
        return span_id in self._spans

    def line_count(self, resource: str | None = None) -> int:
        if resource is None:
            return self._count
        log = self._logs.get(resource)
        return len(log.lines) if log else 0

    def last_seq(self) -> int:
        newest = [log.lines[-1].seq for log in self._logs.values() if log.lines]
        return max(newest, default=0)

    def process_start(self) -> int:
        """Sequence number of the first line of the current Tilt process (0 = the first)."""
        return self._process_starts[-1] if self._process_starts else 0

    def process_starts(self) -> tuple[int, ...]:
        """First sequence number of each Tilt process after the first (the 64 newest)."""
        return tuple(self._process_starts)

    def _runs(self, resources: Collection[str] | None) -> list[deque[LogLine]]:
        if resources is None:
            return [log.lines for log in self._logs.values()]
        return [self._logs[r].lines for r in resources if r in self._logs]

    def newest_first(self, resources: Collection[str] | None = None) -> Iterator[LogLine]:
        """Every held line, newest first, for the given resources (all when None)."""
        return _newest_first(self._runs(resources))

    def since_seq(self, seq: int, resources: Collection[str] | None = None) -> list[LogLine]:
        """Lines with a sequence number above ``seq``, oldest first."""
        out: list[LogLine] = []
        for line in self.newest_first(resources):
            if line.seq <= seq:
                break
            out.append(line)
        out.reverse()
        return out

    def around(self, line: LogLine, context: int) -> list[LogLine]:
        """``line`` with up to ``context`` lines of its resource either side, oldest first."""
        log = self._logs.get(line.resource)
        if log is None:
            return []
        lines = log.lines
        lo, hi = 0, len(lines)
        while lo < hi:  # seqs grow along a deque: bisect on them
            mid = (lo + hi) // 2
            if lines[mid].seq < line.seq:
                lo = mid + 1
            else:
                hi = mid
        if lo >= len(lines) or lines[lo] is not line:
            return []
        return [lines[i] for i in range(max(0, lo - context), min(len(lines), lo + context + 1))]

    def query(self, q: LogQuery) -> LogResult:
        """Filter, grep (before the tail, with context) and tail, newest lines kept."""
        return run_query(self._runs(q.resources), q)

    def snapshot(self, q: LogQuery) -> LogSnapshot:
        """The lines ``q`` may read, copied (references only): :meth:`LogSnapshot.run` may
        then run in a worker thread while this buffer keeps changing."""
        return LogSnapshot([list(run) for run in self._runs(q.resources)], q)


@dataclass(frozen=True, slots=True)
class LogSnapshot:
    """A query over a copy of the line lists: safe to run off the event loop."""

    runs: list[list[LogLine]]
    q: LogQuery

    def run(self) -> LogResult:
        return run_query(self.runs, self.q)


def _newest_first(runs: Sequence[Sequence[LogLine]]) -> Iterator[LogLine]:
    if len(runs) == 1:
        return reversed(runs[0])
    return heapq.merge(*(reversed(run) for run in runs), key=_neg_seq)


def run_query(runs: Sequence[Sequence[LogLine]], q: LogQuery) -> LogResult:
    """Filter, grep (before the tail, with context) and tail: the newest lines kept."""
    stream: Iterable[LogLine] = _newest_first(runs)
    if q.since_us or q.min_seq or q.levels is not None or q.sources is not None:
        stream = _filtered(stream, q)
    if q.pattern is None:
        picked = list(itertools.islice(stream, q.tail + 1))
        more = len(picked) > q.tail
        picked = picked[: q.tail]
        picked.reverse()
        return LogResult(tuple(picked), more)
    return _grep(stream, q.pattern, q.tail, q.context)


def _neg_seq(line: LogLine) -> int:
    return -line.seq


def _filtered(stream: Iterable[LogLine], q: LogQuery) -> Iterator[LogLine]:
    """Since, process, level and source filters. A build event line (the first line of a
    build, e.g. ``Initial Build``) passes every level and source filter, as in Tilt's
    ``LogFilter.Matches``: it shows which lines belong to which build."""
    for line in stream:
        if line.time_us < q.since_us or line.seq < q.min_seq:
            return  # newest first: everything after this is older
        if line.build_event:
            yield line
            continue
        if q.levels is not None and line.level not in q.levels:
            continue
        if q.sources is not None and line.source not in q.sources:
            continue
        yield line


def _grep(stream: Iterable[LogLine], pattern: Searcher, tail: int, context: int) -> LogResult:
    """Newest ``tail`` matches, each with ``context`` lines either side (grep -C)."""
    kept: dict[int, LogLine] = {}
    recent: deque[LogLine] = deque(maxlen=context)
    matches = 0
    older_needed = 0
    more = False
    for line in stream:
        is_match = pattern.search(strip_ansi(line.text)) is not None
        if is_match and matches < tail:
            matches += 1
            kept[line.seq] = line
            for newer in recent:
                kept[newer.seq] = newer
            older_needed = context
        elif older_needed:
            kept[line.seq] = line
            older_needed -= 1
            more = more or is_match
        elif is_match:
            more = True
            break
        if context:
            recent.append(line)
    lines = sorted(kept.values(), key=_neg_seq, reverse=True)
    return LogResult(tuple(lines), more)
