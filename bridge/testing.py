"""A fake Tilt for tests and ``--demo``: a real HTTP + websocket server on one port.

Shipped with the package like ``structlog.testing`` or ``httpx.MockTransport``.
Three layers, top to bottom:

**Recordings.** Real ``/ws/view`` traffic from a real Tilt is bundled gzipped in
``bridge/data/recordings``. :func:`load_recording` reads one into frozen
:class:`Recording` / :class:`Connection` / :class:`Frame` / :class:`Marker` values.

**The model** (pure, no I/O, the clock passed in). :class:`LogStore` is Tilt's log
store: segments plus spans, a checkpoint is ``offset + index`` and the store is
truncated with Tilt's own algorithm when it passes ``max_bytes``. :class:`TiltModel`
holds resources, buttons, the session and clusters by name, and merges a
(recorded) delta into them: objects are replaced whole, tombstones
(``metadata.deletionTimestamp``) delete, segments are appended under the model's
own checkpoint numbers. Reactions to write calls (a build, disabling a resource,
a button's command) are plain functions from the model to the next delta, in the
shapes the recordings show.

**The server** (:class:`FakeTilt`). A small ASGI app (Starlette's request and
response classes, no router) served by uvicorn in the caller's event loop
(asyncio only). It checks auth like Tilt (token, csrf,
``Origin``), sends each websocket client a complete view and then deltas with
checkpoints counted for that client, and answers Tilt's write endpoints with
Tilt's status codes and bodies. Every change, from a test's :meth:`FakeTilt.send`
or from a reaction, goes through the same path: merge into the model, broadcast.

Nothing is printed; uvicorn logs only warnings, to its own logger.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = [
    "DEFAULT_INITIAL",
    "DEFAULT_TOKEN",
    "MAX_LOG_BYTES",
    "Connection",
    "FakeTilt",
    "Frame",
    "JSONDict",
    "LogStore",
    "Marker",
    "RecordedRequest",
    "Recording",
    "TiltModel",
    "load_api_view",
    "load_recording",
    "recording_names",
    "run_demo_activity",
]

JSONObject: TypeAlias = Mapping[str, object]
"""A decoded JSON object, read-only (what the public API accepts)."""

JSONDict: TypeAlias = dict[str, object]
"""A decoded JSON object the caller may keep (what the public API returns)."""

_Obj: TypeAlias = dict[str, Any]
"""A decoded JSON object the model mutates (private: JSON is dynamically typed)."""

DEFAULT_TOKEN: Final = "3c8f6f2e-9b1d-4c47-a6e2-5d0f7b9e4a21"
"""The session token a :class:`FakeTilt` uses unless told otherwise."""

DEFAULT_INITIAL: Final = "02-trigger-manual"
"""The recording whose first complete view is the default state: the demo project, loaded."""

MAX_LOG_BYTES: Final = 2_000_000
"""Tilt's log store cap (``defaultMaxLogLengthInBytes``); it truncates to half beyond it."""

BUILD_HISTORY_LIMIT: Final = 2
"""Tilt keeps the two newest builds in ``buildHistory``."""

FORBIDDEN_BODY: Final = "Forbidden\n"
WS_FORBIDDEN_BODY: Final = (
    "Forbidden\nError upgrading websocket: websocket: request origin not allowed by "
    "Upgrader.CheckOrigin\n"
)
"""What Tilt answers (403) to a websocket handshake with a wrong csrf, as recorded."""

BUTTON_COMMANDS: Final[Mapping[str, tuple[str, str]]] = {
    "ok-hello": ('echo "hello $WHO from button"', "hello {WHO} from button\n"),
}
"""Custom buttons whose command the fake runs: name → (command line, output template).

The template is formatted with the click's input values (or the inputs' defaults).
"""

_RECORDINGS_DIR: Final = "data/recordings"
_MICRO_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_BUILD_SPAN_RE: Final = re.compile(r"^build:(\d+)$")
_LOCALSERVE_RE: Final = re.compile(r"^localserve:(\d+)$")
_BUILD_REASONS: Final[Mapping[int, str]] = {16: "Web Trigger", 32: "CLI Trigger"}


# =========================================================================== recordings


@dataclass(frozen=True, slots=True)
class Frame:
    """One websocket text message exactly as Tilt sent it (``raw`` ends with ``\\n``)."""

    seq: int
    t: float
    raw: str

    def view(self) -> dict[str, object]:
        """The decoded View."""
        decoded: dict[str, object] = json.loads(self.raw)
        return decoded


@dataclass(frozen=True, slots=True)
class Marker:
    """A non-frame event of a recording: ``connected``, ``action``, ``server-closed``, ….

    ``data`` holds the marker's other fields, e.g. an action's ``what``, ``status``
    and ``body``, or ``server-closed``'s ``code``.
    """

    kind: str
    data: Mapping[str, object]


Event: TypeAlias = Frame | Marker


@dataclass(frozen=True, slots=True)
class Connection:
    """One websocket connection of a recording: its events in order, frames and markers."""

    label: str
    events: tuple[Event, ...]

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(e for e in self.events if isinstance(e, Frame))

    @property
    def markers(self) -> tuple[Marker, ...]:
        return tuple(e for e in self.events if isinstance(e, Marker))

    def complete_view(self) -> dict[str, object]:
        """The connection's first frame: the complete view (``isComplete: true``)."""
        return self.frames[0].view()


@dataclass(frozen=True, slots=True)
class Recording:
    """A recorded scenario (``NN-name``): one or more connections."""

    name: str
    connections: tuple[Connection, ...]


def _recording_file(filename: str) -> bytes:
    path = resources.files("bridge").joinpath(f"{_RECORDINGS_DIR}/{filename}")
    return gzip.decompress(path.read_bytes())


def recording_names() -> list[str]:
    """The bundled recordings, sorted: ``["01-startup", "02-trigger-manual", …]``."""
    folder = resources.files("bridge").joinpath(_RECORDINGS_DIR)
    suffix = ".jsonl.gz"
    return sorted(p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix))


@cache
def load_recording(name: str) -> Recording:
    """Read a bundled recording, e.g. ``load_recording("02-trigger-manual")``.

    A ``connected`` marker starts a new :class:`Connection` (and is its first event).
    Raises :class:`LookupError` for an unknown name, listing the known ones.
    """
    try:
        text = _recording_file(f"{name}.jsonl.gz").decode("utf-8")
    except FileNotFoundError:
        raise LookupError(
            f"no recording named {name!r}; known: {', '.join(recording_names())}"
        ) from None
    connections: list[tuple[str, list[Event]]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        rec: dict[str, object] = json.loads(line)
        event: Event
        if "marker" in rec:
            kind = str(rec.pop("marker"))
            event = Marker(kind=kind, data=MappingProxyType(rec))
            if kind == "connected":
                connections.append((str(rec.get("label", "")), []))
        else:
            seq, t, raw = rec["seq"], rec["t"], rec["raw"]
            assert isinstance(seq, int)
            assert isinstance(t, int | float)
            assert isinstance(raw, str)
            event = Frame(seq=seq, t=float(t), raw=raw)
        if not connections:
            connections.append(("", []))
        connections[-1][1].append(event)
    return Recording(
        name=name,
        connections=tuple(Connection(label=lbl, events=tuple(evs)) for lbl, evs in connections),
    )


def load_api_view() -> dict[str, object]:
    """The recorded ``GET /api/view`` answer (a complete view as JSON)."""
    decoded: dict[str, object] = json.loads(_recording_file("api-view.json.gz"))
    return decoded


# =========================================================================== model: logs


def micro_time(moment: datetime) -> str:
    """Kubernetes MicroTime, as Tilt writes it: ``2026-11-26T20:59:52.974907Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _span_manifest(spans: Mapping[str, _Obj], span_id: str) -> str:
    span = spans.get(span_id)
    return str(span.get("manifestName", "")) if span else ""


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
            mn = _span_manifest(self.spans, str(seg.get("spanId", "")))
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
            mn = _span_manifest(self.spans, str(seg.get("spanId", "")))
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

    def since(self, checkpoint: int) -> tuple[int, list[JSONDict]]:
        """Tilt's ``ToLogList`` index rule: ``(from_checkpoint, segments from there on)``."""
        index = min(max(checkpoint - self.offset, 0), len(self.segments))
        return self.offset + index, self.segments[index:]

    def log_list(self, checkpoint: int, *, all_spans: bool) -> JSONDict | None:
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
            if manifest is None or _span_manifest(self.spans, str(s.get("spanId", ""))) == manifest
        ]


# =========================================================================== model: state


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def _is_tombstone(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def _as_view(view: JSONObject | str) -> _Obj:
    if isinstance(view, str):
        decoded = json.loads(view)
        if not isinstance(decoded, dict):
            raise TypeError(f"a View must be a JSON object, got {type(decoded).__name__}")
        return decoded
    return copy.deepcopy(dict(view))


@dataclass
class Change:
    """What one merge changed: the objects to put in the delta frame, whole."""

    resources: list[_Obj] = field(default_factory=list)
    buttons: list[_Obj] = field(default_factory=list)
    clusters: list[_Obj] = field(default_factory=list)
    session: _Obj | None = None
    segments: int = 0


class TiltModel:
    """Tilt's state as the web UI sees it: objects by name plus the log store.

    Pure: no I/O, no clock. Build it from a complete view; change it with
    :meth:`apply` (a delta); read it with :meth:`complete_view`.
    """

    def __init__(
        self,
        view: JSONObject | str,
        *,
        max_log_bytes: int | None = MAX_LOG_BYTES,
        tilt_start_time: str | None = None,
    ) -> None:
        v = _as_view(view)
        self.resources: dict[str, _Obj] = {}
        self.buttons: dict[str, _Obj] = {}
        self.clusters: dict[str, _Obj] = {}
        self.session: _Obj | None = None
        self.logs = LogStore(max_bytes=max_log_bytes)
        self.tiltfile_args: list[str] = []
        self.build_errors: dict[str, str | None] = {}
        self.tilt_start_time = str(tilt_start_time or v.get("tiltStartTime") or "")
        self._rv = 0
        self._span_counters: dict[str, int] = {"build": 0, "localserve": 0}
        v.pop("isComplete", None)
        self.apply(v)

    # ---------------------------------------------------------------- reading

    def complete_view(self, *, checkpoint: int = 0) -> JSONDict:
        """A complete View with all logs from ``checkpoint`` on (key order as Tilt's)."""
        out: _Obj = {}
        log_list = self.logs.log_list(checkpoint, all_spans=True)
        if log_list is not None:
            out["logList"] = log_list
        out["tiltStartTime"] = self.tilt_start_time
        if self.session is not None:
            out["uiSession"] = copy.deepcopy(self.session)
        if self.resources:
            out["uiResources"] = copy.deepcopy(list(self.resources.values()))
        if self.buttons:
            out["uiButtons"] = copy.deepcopy(list(self.buttons.values()))
        if self.clusters:
            out["clusters"] = copy.deepcopy(list(self.clusters.values()))
        out["isComplete"] = True
        return out

    def delta_view(self, change: Change, *, checkpoint: int) -> tuple[JSONDict, int]:
        """The delta frame for a client at ``checkpoint``, and its new checkpoint."""
        out: _Obj = {}
        log_list = self.logs.log_list(checkpoint, all_spans=False)
        if log_list is not None:
            out["logList"] = log_list
        out["tiltStartTime"] = self.tilt_start_time
        if change.session is not None:
            out["uiSession"] = change.session
        if change.resources:
            out["uiResources"] = change.resources
        if change.buttons:
            out["uiButtons"] = change.buttons
        if change.clusters:
            out["clusters"] = change.clusters
        return out, self.logs.checkpoint

    # ---------------------------------------------------------------- writing

    def apply(self, view: JSONObject | str) -> Change:
        """Merge a delta: objects replaced whole by name, tombstones delete, logs appended.

        ``tiltStartTime``, ``isComplete`` and the delta's own checkpoints are ignored:
        the model numbers segments itself. Returns what changed, for the frame.
        """
        v = _as_view(view)
        change = Change()
        for key, table, bucket in (
            ("uiResources", self.resources, change.resources),
            ("uiButtons", self.buttons, change.buttons),
            ("clusters", self.clusters, change.clusters),
        ):
            objs = v.get(key)
            if not isinstance(objs, list):
                continue
            for obj in objs:
                if not isinstance(obj, dict) or not _name(obj):
                    continue
                self._see_rv(obj)
                if _is_tombstone(obj):
                    table.pop(_name(obj), None)
                else:
                    table[_name(obj)] = obj
                bucket.append(copy.deepcopy(obj))
        session = v.get("uiSession")
        if isinstance(session, dict):
            self._see_rv(session)
            self.session = session
            change.session = copy.deepcopy(session)
        log_list = v.get("logList")
        if isinstance(log_list, dict):
            spans = log_list.get("spans")
            if isinstance(spans, dict):
                self.logs.add_spans(spans)
            for seg in log_list.get("segments") or ():
                if isinstance(seg, dict):
                    self._see_span(str(seg.get("spanId", "")))
                    self.logs.append(seg)
                    change.segments += 1
        return change

    def next_rv(self) -> str:
        """The next ``resourceVersion`` (one counter for all kinds, like an apiserver)."""
        self._rv += 1
        return str(self._rv)

    def next_span(self, kind: Literal["build", "localserve"]) -> str:
        """A fresh ``build:N`` / ``localserve:N`` span id."""
        self._span_counters[kind] += 1
        return f"{kind}:{self._span_counters[kind]}"

    def restart(self, *, tilt_start_time: str, first_log: str, now: str) -> None:
        """A new Tilt process: checkpoints from 0, only its first log line."""
        self.logs = LogStore(max_bytes=self.logs.max_bytes)
        self.logs.append({"time": now, "text": first_log, "level": "INFO"})
        self.tilt_start_time = tilt_start_time
        if self.session is not None:
            status = self.session.setdefault("status", {})
            status["tiltStartTime"] = tilt_start_time[:19] + "Z"

    def _see_rv(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata")
        if isinstance(meta, Mapping):
            rv = str(meta.get("resourceVersion", ""))
            if rv.isdigit():
                self._rv = max(self._rv, int(rv))

    def _see_span(self, span_id: str) -> None:
        for kind, regex in (("build", _BUILD_SPAN_RE), ("localserve", _LOCALSERVE_RE)):
            m = regex.match(span_id)
            if m:
                self._span_counters[kind] = max(self._span_counters[kind], int(m.group(1)))


# =========================================================================== model: reactions
#
# Each function reads the model and returns the next delta View (wire format). The
# server applies it with TiltModel.apply and broadcasts it, exactly like a recorded
# delta. Shapes and texts follow the recordings (02, 03, 04, 05).


def _segment(span_id: str, now: str, text: str, **extra: object) -> _Obj:
    seg: _Obj = {"spanId": span_id, "time": now, "text": text, "level": "INFO"}
    seg.update(extra)
    return seg


def _delta(
    *,
    resources: Iterable[_Obj] = (),
    buttons: Iterable[_Obj] = (),
    segments: Sequence[_Obj] = (),
    spans: Mapping[str, str] | None = None,
) -> _Obj:
    out: _Obj = {}
    if segments:
        out["logList"] = {
            "spans": {k: {"manifestName": v} for k, v in (spans or {}).items()},
            "segments": list(segments),
        }
    res, btn = list(resources), list(buttons)
    if res:
        out["uiResources"] = res
    if btn:
        out["uiButtons"] = btn
    return out


def _set_condition(status: _Obj, ctype: str, value: str, reason: str | None, now: str) -> None:
    """Set a condition; ``lastTransitionTime`` changes only when the status flips."""
    conds: list[_Obj] = status.setdefault("conditions", [])
    cond = next((c for c in conds if c.get("type") == ctype), None)
    if cond is None:
        cond = {"type": ctype, "status": value, "lastTransitionTime": now}
        conds.append(cond)
    elif cond.get("status") != value:
        cond["status"] = value
        cond["lastTransitionTime"] = now
    if reason:
        cond["reason"] = reason
    else:
        cond.pop("reason", None)


def _bumped(model: TiltModel, obj: _Obj) -> _Obj:
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {})["resourceVersion"] = model.next_rv()
    return out


def _resource(model: TiltModel, name: str) -> _Obj:
    try:
        return model.resources[name]
    except KeyError:
        raise LookupError(f"no resource named {name!r}") from None


def is_disabled(resource: Mapping[str, Any]) -> bool:
    """Whether a UIResource's ``disableStatus.state`` is ``Disabled``."""
    status = resource.get("status") or {}
    return bool((status.get("disableStatus") or {}).get("state") == "Disabled")


def _is_serve_only(resource: Mapping[str, Any]) -> bool:
    """A ``serve_cmd``-only resource: nothing to update, its updateStatus is not_applicable."""
    return bool((resource.get("status") or {}).get("updateStatus") == "not_applicable")


def build_script(model: TiltModel, name: str) -> tuple[str | None, list[str]]:
    """The update command's "Running cmd:" line and its output, from the last build's logs.

    A resource whose command never ran (``auto_init=False``) falls back to
    ``echo "<name> ran"``, which is what the demo Tiltfile's lazy resources run.
    A serve-only resource has no update command.
    """
    res = _resource(model, name)
    if _is_serve_only(res) or name == "(Tiltfile)":
        return None, []
    span = f"cmd:{name}:update"
    texts = [str(s.get("text", "")) for s in model.logs.segments if s.get("spanId") == span]
    starts = [i for i, t in enumerate(texts) if t.startswith("Running cmd: ")]
    if not starts:
        return f'Running cmd: echo "{name} ran"\n', [f"{name} ran\n"]
    return texts[starts[-1]], texts[starts[-1] + 1 :]


def _serve_cmd(model: TiltModel, name: str) -> str | None:
    """The serve command of a resource, from its newest ``localserve`` span."""
    for seg in reversed(model.logs.segments):
        span_id = str(seg.get("spanId", ""))
        text = str(seg.get("text", ""))
        if (
            span_id.startswith("localserve:")
            and _span_manifest(model.logs.spans, span_id) == name
            and text.startswith("Running cmd: ")
        ):
            return text[len("Running cmd: ") :].rstrip("\n")
    return None


def runtime_span(model: TiltModel, name: str) -> str | None:
    """The newest ``localserve:N`` span of a resource (where its server logs), if any."""
    best: tuple[int, str] | None = None
    for span_id in model.logs.spans:
        m = _LOCALSERVE_RE.match(span_id)
        if m and _span_manifest(model.logs.spans, span_id) == name:
            n = int(m.group(1))
            if best is None or n > best[0]:
                best = (n, span_id)
    return best[1] if best else None


def build_error(model: TiltModel, name: str) -> str | None:
    """How the next build of ``name`` ends: None (success) or the error text.

    An explicit :attr:`TiltModel.build_errors` entry wins; otherwise a resource
    whose last build failed fails again the same way (``fail`` keeps failing), and a
    cancelled build does not count.
    """
    if name in model.build_errors:
        return model.build_errors[name]
    history = (_resource(model, name).get("status") or {}).get("buildHistory") or []
    if history and history[0].get("error") and history[0]["error"] != "build canceled":
        return str(history[0]["error"])
    return None


def build_queued(
    model: TiltModel, name: str, *, span: str, now: str, reason: str, cmd: str | None
) -> JSONDict:
    """Trigger accepted: ``queued`` + ``pending``, the build's init line and command line."""
    res = _bumped(model, _resource(model, name))
    status = res.setdefault("status", {})
    status["queued"] = True
    if not _is_serve_only(res):
        status["updateStatus"] = "pending"
    _set_condition(status, "UpToDate", "False", "UpdatePending", now)
    _set_condition(status, "Ready", "False", "UpdatePending", now)
    segs = [_segment(span, now, f"{reason}\n", fields={"buildEvent": "init"})]
    spans = {span: name}
    if cmd is not None:
        segs.append(_segment(f"cmd:{name}:update", now, cmd))
        spans[f"cmd:{name}:update"] = name
    return _delta(resources=[res], segments=segs, spans=spans)


def build_started(
    model: TiltModel, name: str, *, span: str, start: str, now: str, output: Sequence[str]
) -> JSONDict:
    """The build runs: ``in_progress`` + ``currentBuild``, and the command's output."""
    res = _bumped(model, _resource(model, name))
    status = res.setdefault("status", {})
    status.pop("queued", None)
    status["currentBuild"] = {"startTime": start, "spanID": span}
    if not _is_serve_only(res):
        status["updateStatus"] = "in_progress"
    _set_condition(status, "UpToDate", "False", "Unknown", now)
    _set_condition(status, "Ready", "False", "Unknown", now)
    segs = [_segment(f"cmd:{name}:update", now, text) for text in output]
    return _delta(resources=[res], segments=segs, spans={f"cmd:{name}:update": name})


def build_finished(
    model: TiltModel, name: str, *, span: str, start: str, now: str, error: str | None
) -> JSONDict:
    """The build ends: a new ``buildHistory[0]``; on error the ERROR anchor and UpdateError."""
    res = _bumped(model, _resource(model, name))
    status = res.setdefault("status", {})
    status.pop("queued", None)
    status.pop("currentBuild", None)
    record: _Obj = {"startTime": start, "finishTime": now, "spanID": span}
    segs: list[_Obj] = []
    if error is None:
        status["lastDeployTime"] = now
        if not _is_serve_only(res):
            status["updateStatus"] = "ok"
        _set_condition(status, "UpToDate", "True", None, now)
        _set_condition(status, "Ready", "True", None, now)
    else:
        record = {"error": error, **record}
        status["updateStatus"] = "error"
        _set_condition(status, "UpToDate", "False", "UpdateError", now)
        _set_condition(status, "Ready", "False", "UpdateError", now)
        segs.append(_segment(span, now, f"Build Failed: {error}", level="ERROR", anchor=True))
    history = [record, *(status.get("buildHistory") or [])]
    status["buildHistory"] = history[:BUILD_HISTORY_LIMIT]
    return _delta(resources=[res], segments=segs, spans={span: name})


def _toggle_spec(button: _Obj, *, disabled: bool) -> None:
    spec = button.setdefault("spec", {})
    spec["text"] = "Enable Resource" if disabled else "Disable Resource"
    if disabled:
        spec.pop("requiresConfirmation", None)
    else:
        spec["requiresConfirmation"] = True
    spec["inputs"] = [
        {"name": "action", "label": "", "hidden": {"value": "off" if disabled else "on"}}
    ]


def resource_disabled(model: TiltModel, name: str, *, now: str) -> JSONDict:
    """``toggle-<res>-disable`` with ``on``: the resource goes Disabled, its server stops."""
    res = _bumped(model, _resource(model, name))
    status = res.setdefault("status", {})
    for key in ("buildHistory", "currentBuild", "queued"):
        status.pop(key, None)
    status["updateStatus"] = "none"
    status["runtimeStatus"] = "none"
    ds = status.setdefault("disableStatus", {})
    ds.update({"enabledCount": 0, "disabledCount": 1, "state": "Disabled"})
    _set_condition(status, "UpToDate", "False", "Disabled", now)
    _set_condition(status, "Ready", "False", "Disabled", now)
    segs: list[_Obj] = []
    spans: dict[str, str] = {}
    serve = _serve_cmd(model, name)
    if serve is not None:
        quoted = json.dumps(serve)
        text = f'Resource is disabled, stopping cmd ["sh" "-c" {quoted}]\n'
        segs.append(_segment(f"CmdServer-{name}", now, text))
        spans[f"CmdServer-{name}"] = name
    text = f'Resource "{name}" disabled. To enable/disable it, use the Tilt Web UI.\n'
    segs.append(_segment(f"disabletoggle-{name}", now, text))
    spans[f"disabletoggle-{name}"] = name
    buttons = []
    toggle = model.buttons.get(f"toggle-{name}-disable")
    if toggle is not None:
        toggle = _bumped(model, toggle)
        _toggle_spec(toggle, disabled=True)
        buttons.append(toggle)
    return _delta(resources=[res], buttons=buttons, segments=segs, spans=spans)


def resource_enabling(model: TiltModel, name: str, *, now: str) -> JSONDict:
    """``toggle-<res>-disable`` with ``off``, first step: Enabled and pending."""
    res = _bumped(model, _resource(model, name))
    status = res.setdefault("status", {})
    ds = status.setdefault("disableStatus", {})
    ds.update({"enabledCount": 1, "disabledCount": 0, "state": "Enabled"})
    status["updateStatus"] = "pending"
    status["runtimeStatus"] = "pending" if _has_server(model, name) else "not_applicable"
    _set_condition(status, "UpToDate", "False", "UpdatePending", now)
    _set_condition(status, "Ready", "False", "UpdatePending", now)
    return _delta(resources=[res])


def _has_server(model: TiltModel, name: str) -> bool:
    return _serve_cmd(model, name) is not None


def resource_enabled(model: TiltModel, name: str, *, span: str, now: str) -> JSONDict:
    """Second step of enabling: the "Initial Build", the server restarted, button flipped."""
    serve = _serve_cmd(model, name)
    res = _bumped(model, _resource(model, name))
    status = res.setdefault("status", {})
    text = f'Resource "{name}" enabled. To enable/disable it, use the Tilt Web UI.\n'
    segs = [
        _segment(f"disabletoggle-{name}", now, text),
        _segment(span, now, "Initial Build\n", fields={"buildEvent": "init"}),
    ]
    spans = {f"disabletoggle-{name}": name, span: name}
    if serve is not None:
        serve_span = model.next_span("localserve")
        segs.append(_segment(serve_span, now, f"Running cmd: {serve}\n"))
        spans[serve_span] = name
        status["updateStatus"] = "not_applicable"
        status["runtimeStatus"] = "ok"
    else:
        cmd, output = build_script(model, name)
        if cmd is not None:
            segs.append(_segment(f"cmd:{name}:update", now, cmd))
            segs += [_segment(f"cmd:{name}:update", now, t) for t in output]
            spans[f"cmd:{name}:update"] = name
        status["updateStatus"] = "ok"
        status["runtimeStatus"] = "not_applicable"
    status["lastDeployTime"] = now
    status["buildHistory"] = [{"startTime": now, "finishTime": now, "spanID": span}]
    _set_condition(status, "UpToDate", "True", None, now)
    _set_condition(status, "Ready", "True", None, now)
    buttons = []
    toggle = model.buttons.get(f"toggle-{name}-disable")
    if toggle is not None:
        toggle = _bumped(model, toggle)
        _toggle_spec(toggle, disabled=False)
        buttons.append(toggle)
    return _delta(resources=[res], buttons=buttons, segments=segs, spans=spans)


def _input_values(button: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for spec_input in (button.get("spec") or {}).get("inputs") or ():
        for kind in ("text", "choice", "bool", "hidden"):
            default = (spec_input.get(kind) or {}).get("defaultValue")
            if default is not None:
                values[str(spec_input.get("name"))] = str(default)
    for given in inputs:
        for kind in ("text", "choice", "bool", "hidden"):
            if isinstance(given.get(kind), Mapping) and "value" in given[kind]:
                values[str(given.get("name"))] = str(given[kind]["value"])
    return values


def button_command(
    model: TiltModel, name: str, inputs: Sequence[Mapping[str, Any]], *, now: str
) -> JSONDict | None:
    """A custom button's command output (see :data:`BUTTON_COMMANDS`), or None."""
    if name not in BUTTON_COMMANDS or name not in model.buttons:
        return None
    button = model.buttons[name]
    cmd, template = BUTTON_COMMANDS[name]
    values = _input_values(button, inputs)
    manifest = str(((button.get("spec") or {}).get("location") or {}).get("componentID", ""))
    span = f"cmd:{name}"
    try:
        output = template.format(**values)
    except KeyError:
        output = template
    segs = [_segment(span, now, f"Running cmd: {cmd}\n"), _segment(span, now, output)]
    return _delta(segments=segs, spans={span: manifest})


# =========================================================================== server: HTTP


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake answered. ``headers`` keys are lower-case.

    A websocket handshake is recorded with method ``GET`` and status 101 when
    accepted (403 when refused).
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    status: int


def _k8s_status(code: int, reason: str, message: str, name: str | None = None) -> str:
    status: _Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if name is not None:
        status["details"] = {"name": name, "group": "tilt.dev", "kind": "uibuttons"}
    status["code"] = code
    return json.dumps(status, separators=(",", ":")) + "\n"


def _json_response(body: str, status: int) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _go_error(message: str, status: int) -> Response:
    """Go's ``http.Error``: the message plus a newline, text/plain."""
    return PlainTextResponse(message + "\n", status_code=status)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(eq=False)
class _Client:
    ws: WebSocket
    checkpoint: int = 0
    silent: bool = False


@dataclass(eq=False)
class _Build:
    name: str
    span: str
    start: str
    generation: int
    cancel: anyio.Event = field(default_factory=anyio.Event)
    again: bool = False


InitialState: TypeAlias = str | Recording | Connection | JSONObject | None
"""A recording name, a recording or one connection of it (its complete view), or a View."""


def _initial_view(initial: InitialState) -> _Obj:
    if initial is None:
        initial = DEFAULT_INITIAL
    if isinstance(initial, str):
        initial = load_recording(initial)
    if isinstance(initial, Recording):
        initial = initial.connections[0]
    if isinstance(initial, Connection):
        return initial.complete_view()
    return _as_view(initial)


class FakeTilt:
    """A model of Tilt's HUD server on ``127.0.0.1``: ``/ws/view``, ``/api/*``, ``/proxy/*``.

    Use it as ``async with FakeTilt() as tilt:`` (asyncio only: uvicorn runs in the
    caller's loop). Inside, ``tilt.base_url`` answers like Tilt and :meth:`send`,
    :meth:`replay`, :meth:`drop`, :meth:`restart` drive it. See the module docstring.

    ``token=None`` turns the token check off (``TILT_DISABLE_HUD_AUTH``);
    ``require_csrf=False`` accepts websockets without csrf (Tilt ≤ 0.37.3).
    ``frame_delay_s`` is the pause between the frames of a reaction (a build, a
    disable); ``build_time_s`` how long a triggered build stays ``in_progress``
    (set it high to test the stop-build button). ``silent=True`` accepts
    websockets and sends nothing, though pings are still answered (first-frame
    timeout tests); ``hung=True`` also stops reading the connection, so pings and
    close frames go unanswered (ping liveness tests). Both can be flipped at any
    time and apply to new connections.
    """

    def __init__(
        self,
        *,
        token: str | None = DEFAULT_TOKEN,
        initial: InitialState = None,
        port: int = 0,
        frame_delay_s: float = 0.0,
        build_time_s: float = 0.0,
        silent: bool = False,
        hung: bool = False,
        require_csrf: bool = True,
        max_log_bytes: int | None = MAX_LOG_BYTES,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.token = token
        self.csrf = str(uuid.uuid4())
        self.frame_delay_s = frame_delay_s
        self.build_time_s = build_time_s
        self.silent = silent
        self.hung = hung
        self.require_csrf = require_csrf
        self.requests: list[RecordedRequest] = []
        self._clock = clock
        self.model = TiltModel(_initial_view(initial), max_log_bytes=max_log_bytes)
        self._clients: set[_Client] = set()  # those that get frames
        self._sockets: set[_Client] = set()  # every accepted websocket, silent ones too
        self._generation = 0  # bumped by restart(): the old process's builds vanish
        self._connected = 0
        self._conn_changed = anyio.Event()
        self._lock = anyio.Lock()
        self._builds: dict[str, _Build] = {}
        self._busy = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._tg: anyio.abc.TaskGroup | None = None
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None

    # ---------------------------------------------------------------- properties

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/view"

    @property
    def tilt_start_time(self) -> str:
        return self.model.tilt_start_time

    @property
    def connected(self) -> int:
        """Websocket clients connected now (silent ones included)."""
        return self._connected

    def resource(self, name: str) -> dict[str, object]:
        """A copy of the model's UIResource ``name`` (KeyError if absent)."""
        return copy.deepcopy(self.model.resources[name])

    def button(self, name: str) -> dict[str, object]:
        """A copy of the model's UIButton ``name`` (KeyError if absent)."""
        return copy.deepcopy(self.model.buttons[name])

    def view(self) -> dict[str, object]:
        """The complete view a new client would get now."""
        return self.model.complete_view()

    def log_texts(self, resource: str | None = None) -> list[str]:
        """The texts of the stored log segments, all or one resource's."""
        return self.model.logs.texts(resource)

    def set_build_error(self, name: str, error: str | None) -> None:
        """Make the next builds of ``name`` fail with ``error`` (None: succeed)."""
        self.model.build_errors[name] = error

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to ``path`` (query string excluded)."""
        return [r for r in self.requests if r.path == path]

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeTilt:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self.start()
        except BaseException:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tg is not None
        try:
            with anyio.CancelScope(shield=True):
                await self.stop()
        finally:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None

    async def start(self) -> None:
        """Listen (again) on ``port``; a first start with port 0 picks a free port."""
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            host=self.host,
            port=self.port,
            interface="asgi3",
            lifespan="off",
            log_config=None,  # leave the host's logging alone
            log_level="warning",
            access_log=False,
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            ws_ping_interval=None,
            ws_max_size=16 * 1024 * 1024,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        config.load()
        server = uvicorn.Server(config)
        # Server.serve() would also capture SIGINT/SIGTERM and poll every 0.1 s; the
        # fake only needs the listening part, so it drives startup itself.
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._server, self._sock = server, sock

    async def stop(self) -> None:
        """Stop listening and drop every connection (websockets see 1006), like Tilt exiting."""
        server, sock = self._server, self._sock
        if server is None:
            return
        self._server = self._sock = None
        for srv in server.servers:
            srv.close()
        self._abort_connections(server, websockets_only=False)
        if server.server_state.tasks:
            await asyncio.wait(set(server.server_state.tasks), timeout=2)
        for srv in server.servers:
            with anyio.move_on_after(2):
                await srv.wait_closed()
        if sock is not None:
            sock.close()

    async def restart(self, *, initial: InitialState = None, down_s: float = 0.0) -> None:
        """A Tilt process restart: sockets drop (1006), new csrf and ``tiltStartTime``.

        Checkpoints start again at 0. By default resources, buttons and session are
        kept and the log holds one "Tilt started on …" line; ``initial`` replaces the
        whole state, logs included (e.g. ``load_recording("09-tilt-restart")
        .connections[1]``, a Tilt whose Tiltfile is still loading). With ``down_s > 0``
        the port is closed for that long (connections refused) before the new process
        listens on the same port.
        """
        self._generation += 1  # the old process's builds end without a trace
        for build in list(self._builds.values()):
            build.cancel.set()
        self._builds.clear()
        if down_s > 0:
            await self.stop()
        now = self._now()
        async with self._lock:
            # Drop and renew under the lock: no client sees the old process after this.
            if self._server is not None:
                self._abort_connections(self._server, websockets_only=True)
            if initial is None:
                self.model.restart(
                    tilt_start_time=now, first_log=f"Tilt started on {self.base_url}/\n", now=now
                )
            else:
                max_bytes = self.model.logs.max_bytes
                self.model = TiltModel(
                    _initial_view(initial), max_log_bytes=max_bytes, tilt_start_time=now
                )
            self.csrf = str(uuid.uuid4())
        with anyio.fail_after(5):
            await self.wait_connected(0)
        if down_s > 0:
            await anyio.sleep(down_s)
        await self.start()

    # ---------------------------------------------------------------- connections

    async def wait_connected(self, n: int = 1) -> None:
        """Wait until exactly ``n`` websocket clients are connected (0: all gone)."""
        while self._connected != n:
            event = self._conn_changed
            await event.wait()

    def _conn_delta(self, d: int) -> None:
        self._connected += d
        self._conn_changed.set()
        self._conn_changed = anyio.Event()

    async def drop(self) -> None:
        """Abort every websocket TCP connection with no close frame: clients see 1006."""
        if self._server is not None:
            self._abort_connections(self._server, websockets_only=True)
        with anyio.fail_after(5):
            await self.wait_connected(0)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close every websocket cleanly with ``code``."""
        for client in list(self._sockets):
            with anyio.move_on_after(5):
                await client.ws.close(code, reason)

    def _abort_connections(self, server: uvicorn.Server, *, websockets_only: bool) -> None:
        self._clients.clear()
        ws_class = server.config.ws_protocol_class
        for proto in list(server.server_state.connections):
            if websockets_only and not (ws_class and isinstance(proto, ws_class)):
                continue
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.abort()

    # ---------------------------------------------------------------- feeding

    async def send(self, view: JSONObject | str) -> None:
        """Merge a delta into the model and broadcast it (checkpoints are the fake's)."""
        async with self._lock:
            change = self.model.apply(view)
            await self._broadcast(change)

    async def send_raw(self, text: str) -> None:
        """Broadcast exactly ``text`` to every client; the model does not change."""
        async with self._lock:
            for client in list(self._clients):
                await self._send_to(client, text)

    async def replay(
        self, recording: str | Recording, connection: int = 0, *, until_action: str | None = None
    ) -> None:
        """Feed a recording's deltas (after its complete view) through :meth:`send`.

        Only segments new to the recording's client are sent (by its checkpoints),
        so a truncation resend is not duplicated. Stops before the first ``action``
        marker whose ``what`` contains ``until_action``. Waits ``frame_delay_s``
        between frames.
        """
        rec = load_recording(recording) if isinstance(recording, str) else recording
        conn = rec.connections[connection]
        last_to: int | None = None
        first = True
        for event in conn.events:
            if isinstance(event, Marker):
                if (
                    until_action is not None
                    and event.kind == "action"
                    and until_action in str(event.data.get("what", ""))
                ):
                    return
                continue
            view = event.view()
            log_list = view.get("logList")
            if first:
                first = False
                if view.get("isComplete"):
                    if isinstance(log_list, dict):
                        last_to = int(log_list.get("toCheckpoint") or 0)
                    continue
            if isinstance(log_list, dict) and last_to is not None:
                to = int(log_list.get("toCheckpoint") or 0)
                segs = log_list.get("segments") or []
                assert isinstance(segs, list)
                fresh = max(0, min(len(segs), to - last_to))
                log_list["segments"] = segs[len(segs) - fresh :]
                last_to = max(last_to, to)
            await self.send(view)
            if self.frame_delay_s:
                await anyio.sleep(self.frame_delay_s)

    async def wait_idle(self) -> None:
        """Wait until every reaction (build, disable, button command) has finished."""
        await self._idle.wait()

    async def _broadcast(self, change: Change) -> None:
        for client in list(self._clients):
            frame, client.checkpoint = self.model.delta_view(change, checkpoint=client.checkpoint)
            if len(frame) > 1:  # more than tiltStartTime
                await self._send_to(client, _dumps(frame) + "\n")

    async def _send_to(self, client: _Client, text: str) -> None:
        try:
            await client.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._clients.discard(client)

    def _now(self) -> str:
        return micro_time(self._clock())

    # ---------------------------------------------------------------- reactions

    def _spawn(self, func: Callable[[], Awaitable[None]]) -> None:
        assert self._tg is not None, "FakeTilt must be used as `async with FakeTilt() as tilt`"
        self._busy += 1
        self._idle = anyio.Event()

        async def run() -> None:
            try:
                await func()
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

        self._tg.start_soon(run)

    async def _step(self, make: Callable[[], _Obj | None]) -> None:
        """Compute the next delta from the model and broadcast it, atomically."""
        async with self._lock:
            try:
                delta = make()
            except LookupError:  # the resource was deleted meanwhile
                return
            if delta:
                await self._broadcast(self.model.apply(delta))

    async def _pause(self) -> None:
        if self.frame_delay_s:
            await anyio.sleep(self.frame_delay_s)

    def trigger(self, name: str, *, reason: str = "Web Trigger") -> None:
        """Start a build of ``name`` as ``POST /api/trigger`` does (queued if one runs).

        A disabled resource is left alone; an unknown one raises :class:`LookupError`.
        """
        if is_disabled(_resource(self.model, name)):
            return
        running = self._builds.get(name)
        if running is not None:
            running.again = True
            return
        build = _Build(
            name=name,
            span=self.model.next_span("build"),
            start=self._now(),
            generation=self._generation,
        )
        self._builds[name] = build
        self._spawn(lambda: self._run_build(build, reason))

    async def _run_build(self, build: _Build, reason: str) -> None:
        model = self.model
        try:
            while True:
                await self._build_once(model, build, reason)
                if not build.again or build.cancel.is_set():
                    return
                build.again = False
                build.span, build.start = model.next_span("build"), self._now()
                reason = "Web Trigger"
        finally:
            if self._builds.get(build.name) is build:
                del self._builds[build.name]

    async def _build_once(self, model: TiltModel, build: _Build, reason: str) -> None:
        """queued+pending → in_progress (for ``build_time_s``, or until cancelled) → ok/error."""
        name, span, start = build.name, build.span, build.start
        if name not in model.resources:
            return
        cmd, output = build_script(model, name)
        await self._step(
            lambda: build_queued(model, name, span=span, now=start, reason=reason, cmd=cmd)
        )
        await self._pause()
        if build.generation != self._generation:
            return
        await self._step(
            lambda: build_started(
                model, name, span=span, start=start, now=self._now(), output=output
            )
        )
        with anyio.move_on_after(max(self.build_time_s, self.frame_delay_s)):
            await build.cancel.wait()
        res = model.resources.get(name)
        if build.generation != self._generation or res is None or is_disabled(res):
            return  # Tilt restarted, the resource went away or was disabled mid-build
        error = "build canceled" if build.cancel.is_set() else build_error(model, name)
        await self._step(
            lambda: build_finished(
                model, name, span=span, start=start, now=self._now(), error=error
            )
        )

    async def _after_click(self, name: str, inputs: list[_Obj]) -> None:
        model = self.model
        if name.startswith("toggle-") and name.endswith("-disable"):
            res = name[len("toggle-") : -len("-disable")]
            if res not in model.resources:
                return
            action = _input_values(model.buttons.get(name, {}), inputs).get("action")
            if action == "on" and not is_disabled(model.resources[res]):
                running = self._builds.get(res)
                if running is not None:
                    running.cancel.set()
                await self._pause()
                await self._step(lambda: resource_disabled(model, res, now=self._now()))
            elif action == "off" and is_disabled(model.resources[res]):
                await self._pause()
                await self._step(lambda: resource_enabling(model, res, now=self._now()))
                await self._pause()
                span = model.next_span("build")
                await self._step(lambda: resource_enabled(model, res, span=span, now=self._now()))
        elif name.endswith("-stopbuild"):
            running = self._builds.get(name[: -len("-stopbuild")])
            if running is not None:
                running.cancel.set()
        else:
            await self._pause()
            await self._step(lambda: button_command(model, name, inputs, now=self._now()))

    # ---------------------------------------------------------------- ASGI

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            response = await self._http(request)
            self._record(scope, response.status_code)
            await response(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(WebSocket(scope, receive, send))

    def _record(self, scope: Scope, status: int) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(
            RecordedRequest(
                method=scope.get("method", "GET"),
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                status=status,
            )
        )

    @staticmethod
    def _origin_ok(headers: Mapping[str, str]) -> bool:
        origin = headers.get("origin")
        if origin is None:
            return True
        return urlsplit(origin).netloc == headers.get("host", "")

    def _token_ok(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = request.headers.get("x-tilt-token") or request.cookies.get("Tilt-Token")
        return given == self.token

    async def _http(self, request: Request) -> Response:
        path = request.url.path
        if not self._origin_ok(request.headers):
            return _go_error("Forbidden", 403)
        if path == "/":
            response: Response = Response(
                "<!doctype html><title>Tilt (fake)</title>\n", media_type="text/html"
            )
            if "origin" not in request.headers and self.token is not None:
                response.set_cookie("Tilt-Token", self.token, path="/", samesite="strict")
            return response
        if path.startswith(("/api/", "/proxy/")) and not self._token_ok(request):
            return _go_error("Forbidden", 403)
        method = request.method
        routes: dict[tuple[str, str], Callable[[Request], Any]] = {
            ("GET", "/api/websocket_token"): self._api_websocket_token,
            ("GET", "/api/view"): self._api_view,
            ("POST", "/api/trigger"): self._api_trigger,
            ("POST", "/api/override/trigger_mode"): self._api_trigger_mode,
            ("POST", "/api/set_tiltfile_args"): self._api_tiltfile_args,
        }
        handler = routes.get((method, path))
        if handler is not None:
            result: Response = await handler(request)
            return result
        m = re.fullmatch(r"/proxy/apis/tilt\.dev/v1alpha1/uibuttons/([^/]+)/status", path)
        if m and method == "PUT":
            return await self._put_button_status(request, m.group(1))
        if path.startswith("/proxy/"):
            return _go_error("Forbidden", 403)
        if any(p == path for _, p in routes):
            return _go_error("must be POST request", 400)
        return _go_error("404 page not found", 404)

    async def _api_websocket_token(self, request: Request) -> Response:
        return PlainTextResponse(self.csrf)

    async def _api_view(self, request: Request) -> Response:
        async with self._lock:
            body = _dumps(self.model.complete_view()) + "\n"
        return _json_response(body, 200)

    @staticmethod
    async def _json_body(request: Request, fields: set[str] | None = None) -> tuple[object, str]:
        """Decode the body like Go's json decoder (DisallowUnknownFields when ``fields``)."""
        try:
            payload = json.loads(await request.body())
        except ValueError as exc:
            return None, f"error parsing JSON payload: {exc}"
        if fields is not None:
            if not isinstance(payload, dict):
                return None, "error parsing JSON payload: expected a JSON object"
            unknown = sorted(set(payload) - fields)
            if unknown:
                return None, f'error parsing JSON payload: json: unknown field "{unknown[0]}"'
        return payload, ""

    async def _api_trigger(self, request: Request) -> Response:
        payload, err = await self._json_body(request)
        if err or not isinstance(payload, dict):
            return _go_error(err or "error parsing JSON payload", 400)
        names = payload.get("manifest_names")
        if not isinstance(names, list) or len(names) != 1:
            n = len(names) if isinstance(names, list) else 0
            return _go_error(
                f"/api/trigger currently supports exactly one manifest name, got {n}", 400
            )
        name = str(names[0])
        if name not in self.model.resources:
            return _go_error(f"no manifest found with name '{name}'", 404)
        if is_disabled(self.model.resources[name]):
            return PlainTextResponse(f'resource "{name}" is currently disabled')
        reason = payload.get("build_reason")
        self.trigger(
            name,
            reason=_BUILD_REASONS.get(reason if isinstance(reason, int) else 16, "Web Trigger"),
        )
        return Response(b"", status_code=200)

    async def _api_trigger_mode(self, request: Request) -> Response:
        payload, err = await self._json_body(request, {"manifest_names", "trigger_mode"})
        if err or not isinstance(payload, dict):
            return _go_error(err or "error parsing JSON payload", 400)
        names = payload.get("manifest_names")
        mode = payload.get("trigger_mode")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return _go_error("error parsing JSON payload: manifest_names must be strings", 400)
        for n in names:
            if n not in self.model.resources:
                return _go_error(f"no manifest found with name '{n}'", 400)
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 3:
            return _go_error(f"invalid trigger mode: {mode}", 400)

        def override() -> JSONDict:
            changed = []
            for n in names:
                res = _bumped(self.model, self.model.resources[n])
                status = res.setdefault("status", {})
                if mode:
                    status["triggerMode"] = mode
                else:
                    status.pop("triggerMode", None)
                changed.append(res)
            return _delta(resources=changed)

        await self._step(override)
        return Response(b"", status_code=200)

    async def _api_tiltfile_args(self, request: Request) -> Response:
        payload, err = await self._json_body(request)
        if err:
            return _go_error(err, 400)
        if not isinstance(payload, list) or not all(isinstance(a, str) for a in payload):
            return _go_error("error parsing JSON payload: expected a list of strings", 400)
        self.model.tiltfile_args = list(payload)
        return Response(b"", status_code=200)

    async def _put_button_status(self, request: Request, name: str) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _json_response(_k8s_status(400, "BadRequest", str(exc)), 400)
        if name not in self.model.buttons:
            return _json_response(
                _k8s_status(404, "NotFound", f'uibuttons.tilt.dev "{name}" not found', name), 404
            )
        meta = body.get("metadata") if isinstance(body, dict) else None
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or not isinstance(status, dict):
            return _json_response(
                _k8s_status(400, "BadRequest", "the body must be a UIButton with metadata"), 400
            )
        if meta.get("name", name) != name:
            message = (
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
            return _json_response(_k8s_status(400, "BadRequest", message), 400)
        clicked = status.get("lastClickedAt")
        if clicked is not None and not (isinstance(clicked, str) and _MICRO_RE.match(clicked)):
            message = (
                f'parsing time "{clicked}" as "2006-01-02T15:04:05.000000Z07:00": '
                "cannot parse as a MicroTime with 6 fractional digits"
            )
            return _json_response(_k8s_status(400, "BadRequest", message), 400)
        inputs = [i for i in status.get("inputs") or () if isinstance(i, dict)]
        async with self._lock:
            current = self.model.buttons.get(name)
            if current is None:
                return _json_response(
                    _k8s_status(404, "NotFound", f'uibuttons.tilt.dev "{name}" not found', name),
                    404,
                )
            given_rv = meta.get("resourceVersion")
            have_rv = (current.get("metadata") or {}).get("resourceVersion")
            if given_rv not in (None, "") and str(given_rv) != str(have_rv):
                message = (
                    f'Operation cannot be fulfilled on uibuttons.tilt.dev "{name}": the object '
                    "has been modified; please apply your changes to the latest version and "
                    "try again"
                )
                return _json_response(_k8s_status(409, "Conflict", message, name), 409)
            updated = _bumped(self.model, current)
            updated["status"] = copy.deepcopy(status)
            await self._broadcast(self.model.apply({"uiButtons": [updated]}))
        self._spawn(lambda: self._after_click(name, inputs))
        return _json_response(_dumps(updated) + "\n", 200)

    # ---------------------------------------------------------------- websocket

    def _hang(self, scope: Scope) -> None:
        """Stop reading this connection, like a hung Tilt: not even pings get a pong.

        The connection is only noticed gone on :meth:`drop`, :meth:`restart` or
        :meth:`stop` (the fake does not read the client's close either).
        """
        if self._server is None:
            return
        for proto in self._server.server_state.connections:
            if getattr(proto, "scope", None) is scope:
                transport = getattr(proto, "transport", None)
                if transport is not None:
                    transport.pause_reading()

    async def _websocket(self, ws: WebSocket) -> None:
        scope = ws.scope
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] != "/ws/view":
            await ws.send_denial_response(_go_error("404 page not found", 404))
            self._record(scope, 404)
            return
        csrf = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("csrf", [""])[0]
        if not self._origin_ok(headers) or (self.require_csrf and csrf != self.csrf):
            await ws.send_denial_response(PlainTextResponse(WS_FORBIDDEN_BODY, 403))
            self._record(scope, 403)
            return
        await ws.accept()
        self._record(scope, 101)
        client = _Client(ws=ws, silent=self.silent or self.hung)
        self._conn_delta(+1)
        self._sockets.add(client)
        try:
            if self.hung:
                self._hang(scope)
            if not client.silent:
                async with self._lock:
                    view = self.model.complete_view()
                    client.checkpoint = self.model.logs.checkpoint
                    self._clients.add(client)
                    await self._send_to(client, _dumps(view) + "\n")
            while True:  # Tilt ignores what clients send; wait for the end
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
        finally:
            self._clients.discard(client)
            self._sockets.discard(client)
            self._conn_delta(-1)


# =========================================================================== demo


async def run_demo_activity(tilt: FakeTilt, *, speed: float = 1.0) -> None:
    """Feed ``tilt`` realistic live activity forever (cancel to stop).

    Like the demo Tiltfile running: ``ticker`` logs a tick every second, ``web``
    answers its readiness probe every 2 s, ``never-ready`` complains every 5 s,
    ``ok`` rebuilds every 20 s and ``fail`` fails every 45 s. Resources that are
    missing or disabled stay quiet. ``speed`` > 1 runs faster.

    A fake left at zero delays gets Tilt's recorded pace: ~30 ms between the frames
    of a reaction and builds that run ~250 ms (scaled by ``speed``), so triggers and
    button clicks from the bridge show their intermediate states.
    """
    if tilt.frame_delay_s == 0 and tilt.build_time_s == 0:
        tilt.frame_delay_s = 0.03 / speed
        tilt.build_time_s = 0.25 / speed
    tick = 0
    while True:
        await anyio.sleep(1.0 / speed)
        tick += 1
        now = datetime.now(UTC)
        lines = [("ticker", f"tick {tick} {now:%H:%M:%S}\n")]
        if tick % 2 == 0:
            lines.append(
                ("web", f'127.0.0.1 - - [{now:%d/%b/%Y %H:%M:%S}] "GET / HTTP/1.1" 200 -\n')
            )
        if tick % 5 == 0:
            lines.append(("never-ready", "still not ready\n"))
        segments: list[_Obj] = []
        spans: dict[str, str] = {}
        for resource, text in lines:
            res = tilt.model.resources.get(resource)
            span = runtime_span(tilt.model, resource)
            if res is not None and span is not None and not is_disabled(res):
                segments.append(_segment(span, micro_time(now), text))
                spans[span] = resource
        if segments:
            await tilt.send(_delta(segments=segments, spans=spans))
        for name, every in (("ok", 20), ("fail", 45)):
            res = tilt.model.resources.get(name)
            if tick % every == 0 and res is not None and not is_disabled(res):
                tilt.trigger(name, reason=f"1 File Changed: [{name}.txt]")
