"""Tilt's state as the web UI sees it (:class:`TiltModel`), pure: no I/O, no clock.

The model holds resources, buttons, the session and clusters by name plus the log
store, and merges a (recorded) delta into them: objects are replaced whole, tombstones
(``metadata.deletionTimestamp``) delete, segments are appended under the model's own
checkpoint numbers. Also here: the small builders of delta Views in Tilt's wire format
(:func:`segment`, :func:`delta`) and the reads the reactions and the demo share
(:func:`is_disabled`, :func:`runtime_span`, :func:`micro_time`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias

from bridge.testing.logstore import MAX_LOG_BYTES, LogStore

__all__ = [
    "Change",
    "JSONDict",
    "JSONObject",
    "Obj",
    "TiltModel",
    "as_view",
    "delta",
    "is_disabled",
    "micro_time",
    "runtime_span",
    "segment",
]

JSONObject: TypeAlias = Mapping[str, object]
"""A decoded JSON object, read-only (what the public API accepts)."""

JSONDict: TypeAlias = dict[str, object]
"""A decoded JSON object the caller may keep (what the public API returns)."""

Obj: TypeAlias = dict[str, Any]
"""A decoded JSON object the model mutates (JSON is dynamically typed)."""

_BUILD_SPAN_RE: Final = re.compile(r"^build:(\d+)$")
_LOCALSERVE_RE: Final = re.compile(r"^localserve:(\d+)$")


def micro_time(moment: datetime) -> str:
    """Kubernetes MicroTime, as Tilt writes it: ``2026-11-26T20:59:52.974907Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def _is_tombstone(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def as_view(view: JSONObject | str) -> Obj:
    """A View the caller may mutate: decoded from text, or a deep copy."""
    if isinstance(view, str):
        decoded = json.loads(view)
        if not isinstance(decoded, dict):
            raise TypeError(f"a View must be a JSON object, got {type(decoded).__name__}")
        return decoded
    return copy.deepcopy(dict(view))


@dataclass
class Change:
    """What one merge changed: the objects to put in the delta frame, whole."""

    resources: list[Obj] = field(default_factory=list)
    buttons: list[Obj] = field(default_factory=list)
    clusters: list[Obj] = field(default_factory=list)
    session: Obj | None = None
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
        v = as_view(view)
        self.resources: dict[str, Obj] = {}
        self.buttons: dict[str, Obj] = {}
        self.clusters: dict[str, Obj] = {}
        self.session: Obj | None = None
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
        out: Obj = {}
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
        out: Obj = {}
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
        v = as_view(view)
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


# --------------------------------------------------------------------------- reads


def is_disabled(resource: Mapping[str, Any]) -> bool:
    """Whether a UIResource's ``disableStatus.state`` is ``Disabled``."""
    status = resource.get("status") or {}
    return bool((status.get("disableStatus") or {}).get("state") == "Disabled")


def runtime_span(model: TiltModel, name: str) -> str | None:
    """The newest ``localserve:N`` span of a resource (where its server logs), if any."""
    best: tuple[int, str] | None = None
    for span_id in model.logs.spans:
        m = _LOCALSERVE_RE.match(span_id)
        if m and model.logs.manifest_of(span_id) == name:
            n = int(m.group(1))
            if best is None or n > best[0]:
                best = (n, span_id)
    return best[1] if best else None


# --------------------------------------------------------------------------- delta builders


def segment(span_id: str, now: str, text: str, **extra: object) -> Obj:
    """A log segment (``level`` INFO unless ``extra`` says otherwise)."""
    seg: Obj = {"spanId": span_id, "time": now, "text": text, "level": "INFO"}
    seg.update(extra)
    return seg


def delta(
    *,
    resources: Iterable[Obj] = (),
    buttons: Iterable[Obj] = (),
    segments: Sequence[Obj] = (),
    spans: Mapping[str, str] | None = None,
) -> Obj:
    """A delta View; ``spans`` maps the segments' span ids to their manifest."""
    out: Obj = {}
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
