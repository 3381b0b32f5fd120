"""Tilt's log store (pkg/model/logstore), pure: segments, spans, checkpoints, truncation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["MAX_LOG_BYTES", "LogStore"]

MAX_LOG_BYTES: Final = 2_000_000
"""Tilt's log store cap (``defaultMaxLogLengthInBytes``); it truncates to half beyond it."""

_Obj = dict[str, Any]
"""A decoded JSON object the store keeps (JSON is dynamically typed)."""


@dataclass
class LogStore:
    """Tilt's log store (pkg/model/logstore): segments, spans and checkpoints.

    A checkpoint is ``offset + index``. When the text passes ``max_bytes`` the
    store is cut to half with Tilt's algorithm (the heaviest manifest, weighted by
    recency, loses its oldest lines first) and ``offset`` grows by the number of
    segments dropped, so a client behind sees ``fromCheckpoint`` jump past its own.
    ``max_bytes=None`` never truncates.
    """

    max_bytes: int | None = MAX_LOG_BYTES
    segments: list[_Obj] = field(default_factory=list)
    spans: dict[str, _Obj] = field(default_factory=dict)
    offset: int = 0
    size: int = 0

    @property
    def checkpoint(self) -> int:
        return self.offset + len(self.segments)

    def add_spans(self, spans: Mapping[str, object]) -> None:
        """Merge spans additively (a span's ``manifestName`` never changes in Tilt)."""
        for span_id, span in spans.items():
            if isinstance(span, Mapping):
                self.spans.setdefault(span_id, dict(span))

    def append(self, segment: Mapping[str, object], *, manifest: str | None = None) -> None:
        """Append one segment; truncate if the store is now over its cap."""
        seg = dict(segment)
        span_id = str(seg.get("spanId", ""))
        if span_id not in self.spans:
            self.spans[span_id] = {"manifestName": manifest} if manifest else {}
        self.segments.append(seg)
        self.size += len(str(seg.get("text", "")))
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.truncate(self.max_bytes // 2)

    def truncate(self, target_bytes: int) -> int:
        """Cut to ``target_bytes`` like Tilt's ``ensureMaxLength``; return the segments dropped."""
        weights: dict[str, list[Any]] = {}  # manifest -> [bytes, first time]
        for seg in self.segments:
            mn = self.manifest_of(str(seg.get("spanId", "")))
            w = weights.setdefault(mn, [0, str(seg.get("time", ""))])
            w[0] += len(str(seg.get("text", "")))
        left = self.size - target_bytes
        while left > 0 and weights:
            # Most recent first; weight = order * bytes, so older logs go first.
            by_time = sorted(weights.items(), key=lambda kv: kv[1][1], reverse=True)
            heaviest, best = "", -1
            for order, (mn, w) in enumerate(by_time, start=1):
                if order * w[0] > best:
                    heaviest, best = mn, order * w[0]
            count = weights[heaviest][0]
            cut = min(count - count // 2, left)
            if cut <= 0:
                break
            left -= cut
            weights[heaviest][0] -= cut
        kept: list[_Obj] = []
        dropped = 0
        for seg in reversed(self.segments):
            mn = self.manifest_of(str(seg.get("spanId", "")))
            left_w = weights.get(mn)
            if left_w is not None:
                left_w[0] -= len(str(seg.get("text", "")))
                if left_w[0] < 0:
                    dropped += 1
                    continue
            kept.append(seg)
        kept.reverse()
        self.segments = kept
        self.offset += dropped
        self.size = sum(len(str(s.get("text", ""))) for s in kept)
        live = {str(s.get("spanId", "")) for s in kept}
        self.spans = {k: v for k, v in self.spans.items() if k in live}
        return dropped

    def since(self, checkpoint: int) -> tuple[int, list[dict[str, object]]]:
        """Tilt's ``ToLogList`` index rule: ``(from_checkpoint, segments from there on)``."""
        index = min(max(checkpoint - self.offset, 0), len(self.segments))
        return self.offset + index, self.segments[index:]

    def log_list(self, checkpoint: int, *, all_spans: bool) -> dict[str, object] | None:
        """The ``logList`` for a client at ``checkpoint``, or None when it has everything.

        ``all_spans`` (complete views) lists every span, like v0.37.6; otherwise only
        the spans the segments reference, like Tilt master (the recordings).
        """
        start, segs = self.since(checkpoint)
        if not segs:
            return None
        if all_spans:
            spans = {k: dict(v) for k, v in sorted(self.spans.items())}
        else:
            ids = sorted({str(s.get("spanId", "")) for s in segs})
            spans = {k: dict(self.spans.get(k, {})) for k in ids}
        out: _Obj = {"spans": spans, "segments": [dict(s) for s in segs]}
        if start:
            out["fromCheckpoint"] = start
        out["toCheckpoint"] = self.checkpoint
        return out

    def texts(self, manifest: str | None = None) -> list[str]:
        """Segment texts, all or one manifest's (``""`` = the global log)."""
        return [
            str(s.get("text", ""))
            for s in self.segments
            if manifest is None or self.manifest_of(str(s.get("spanId", ""))) == manifest
        ]

    def manifest_of(self, span_id: str) -> str:
        """The manifest a span belongs to (``""``: the global log or an unknown span)."""
        span = self.spans.get(span_id)
        return str(span.get("manifestName", "")) if span else ""
