"""Decode one ``/ws/view`` frame into our own frozen types.

This is the only place that reads Tilt's JSON. Everything downstream works on
the dataclasses below; tools and resources never touch raw dicts.

Decoding is strict about structure (a frame must be a JSON object, objects must
have a name) and lenient about values: a field of the wrong type falls back to
its zero value, and unknown fields are ignored, as Tilt's own web UI does. A
frame that cannot be decoded raises :class:`bridge.errors.FrameError`.
``managedFields`` and other Kubernetes bookkeeping are dropped here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from pydantic_core import from_json

from bridge.errors import FrameError

JSONObject = Mapping[str, object]

UPDATE_STATUSES: Final = ("none", "in_progress", "ok", "pending", "error", "not_applicable")
RUNTIME_STATUSES: Final = ("unknown", "ok", "pending", "error", "not_applicable", "none")
TRIGGER_MODES: Final = {
    0: "auto",
    1: "manual",
    2: "manual_no_init",
    3: "auto_no_init",
}
BUTTON_TYPE_ANNOTATION: Final = "tilt.dev/uibutton-type"


# --------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """One entry of ``buildHistory`` (newest first in :attr:`Resource.build_history`)."""

    span_id: str
    start_time: str | None
    finish_time: str | None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    is_crash_rebuild: bool = False


@dataclass(frozen=True, slots=True)
class CurrentBuild:
    span_id: str
    start_time: str | None


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    last_transition_time: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    id: str
    type: str
    has_live_update: bool = False


@dataclass(frozen=True, slots=True)
class Waiting:
    reason: str
    on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class K8sInfo:
    pod_name: str | None
    pod_status: str | None
    pod_restarts: int
    all_containers_ready: bool


@dataclass(frozen=True, slots=True)
class Resource:
    """A ``UIResource``: one row of Tilt's web UI."""

    name: str
    labels: tuple[str, ...] = ()
    update_status: str = "none"
    runtime_status: str = "unknown"
    build_history: tuple[BuildRecord, ...] = ()
    current_build: CurrentBuild | None = None
    pending_build_since: str | None = None
    last_deploy_time: str | None = None
    has_pending_changes: bool = False
    queued: bool = False
    trigger_mode: int = 0
    endpoints: tuple[Link, ...] = ()
    specs: tuple[Spec, ...] = ()
    order: int = 0
    disable_state: str = ""
    waiting: Waiting | None = None
    local_pid: int | None = None
    is_test: bool = False
    k8s: K8sInfo | None = None
    compose_health: str | None = None
    conditions: tuple[Condition, ...] = ()
    deleted: bool = False
    triggered: bool = False  # set by the bridge, not Tilt: a trigger Tilt accepted, not yet shown

    @property
    def disabled(self) -> bool:
        return self.disable_state == "Disabled"

    def condition(self, type_: str) -> Condition | None:
        for cond in self.conditions:
            if cond.type == type_:
                return cond
        return None


@dataclass(frozen=True, slots=True)
class ButtonInput:
    """One declared input of a UIButton. ``kind`` is text, bool, hidden or choice."""

    name: str
    kind: str
    label: str = ""
    default: str | bool | None = None
    choices: tuple[str, ...] = ()
    placeholder: str | None = None


@dataclass(frozen=True, slots=True)
class Button:
    """A ``UIButton``. ``metadata_json`` is the object's metadata (no managedFields),
    kept verbatim because a click must send it back with the latest resourceVersion."""

    name: str
    component_type: str
    component_id: str
    text: str
    resource_version: str
    metadata_json: str
    icon_name: str | None = None
    disabled: bool = False
    requires_confirmation: bool = False
    inputs: tuple[ButtonInput, ...] = ()
    button_type: str | None = None
    last_clicked_at: str | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    """The ``UISession`` named Tiltfile. ``version`` is spelled as Tilt prints it
    (``v0.37.6-dev``: ``runningTiltBuild.version`` plus ``-dev`` for a dev build, as in
    Tilt's ``TiltBuild.HumanBuildStamp``)."""

    version: str | None = None
    commit_sha: str | None = None
    build_date: str | None = None
    tilt_start_time: str | None = None
    tiltfile_key: str | None = None
    fatal_error: str | None = None


class Segment(NamedTuple):
    """One log segment: at most one line; no trailing newline = continued later.

    A NamedTuple rather than a frozen dataclass: a 3.9 MB frame carries 20 000 of them
    and tuple construction is several times cheaper (measured in ``bench/``)."""

    span_id: str
    time: str
    text: str
    level: str = "INFO"
    anchor: bool = False
    progress_id: str | None = None
    build_event: str | None = None


@dataclass(frozen=True, slots=True)
class LogList:
    spans: Mapping[str, str]  # span id -> manifest name ("" = global)
    segments: tuple[Segment, ...]
    from_checkpoint: int = 0
    to_checkpoint: int = 0


@dataclass(frozen=True, slots=True)
class View:
    """One decoded frame. ``None`` for a collection means the key was absent."""

    is_complete: bool
    tilt_start_time: str | None
    resources: tuple[Resource, ...] | None = None
    buttons: tuple[Button, ...] | None = None
    session: Session | None = None
    log_list: LogList | None = None
    size: int = field(default=0, compare=False)


# --------------------------------------------------------------------------- value helpers


def _obj(value: object) -> JSONObject:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _str(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    return value if isinstance(value, int) else default


def _bool(value: object) -> bool:
    return value if isinstance(value, bool) else False


# --------------------------------------------------------------------------- decoders


def _decode_build(raw: object) -> BuildRecord:
    d = _obj(raw)
    return BuildRecord(
        span_id=_str(d.get("spanID")),
        start_time=_opt_str(d.get("startTime")),
        finish_time=_opt_str(d.get("finishTime")),
        error=_opt_str(d.get("error")),
        warnings=tuple(w for w in _list(d.get("warnings")) if isinstance(w, str)),
        is_crash_rebuild=_bool(d.get("isCrashRebuild")),
    )


def _identity(meta: JSONObject, field_name: str) -> tuple[str, bool]:
    """An object's name (required) and whether it is a tombstone."""
    name = _str(meta.get("name"))
    if not name:
        raise FrameError(f"a {field_name} entry has no metadata.name")
    return name, bool(meta.get("deletionTimestamp"))


def _decode_resource(raw: object) -> Resource:
    d = _obj(raw)
    meta = _obj(d.get("metadata"))
    name, deleted = _identity(meta, "uiResources")
    if deleted:
        return Resource(name=name, deleted=True)
    st = _obj(d.get("status"))
    current = _obj(st.get("currentBuild"))
    current_build = None
    if _opt_str(current.get("startTime")) or _opt_str(current.get("spanID")):
        current_build = CurrentBuild(
            span_id=_str(current.get("spanID")), start_time=_opt_str(current.get("startTime"))
        )
    waiting_raw = _obj(st.get("waiting"))
    waiting = None
    if waiting_raw.get("reason"):
        waiting = Waiting(
            reason=_str(waiting_raw.get("reason")),
            on=tuple(_str(_obj(o).get("name")) for o in _list(waiting_raw.get("on"))),
        )
    local = _obj(st.get("localResourceInfo"))
    k8s_raw = st.get("k8sResourceInfo")
    k8s = None
    if isinstance(k8s_raw, Mapping):
        k8s = K8sInfo(
            pod_name=_opt_str(k8s_raw.get("podName")),
            pod_status=_opt_str(k8s_raw.get("podStatus")),
            pod_restarts=_int(k8s_raw.get("podRestarts")),
            all_containers_ready=_bool(k8s_raw.get("allContainersReady")),
        )
    compose = _obj(st.get("composeResourceInfo"))
    pid = _int(local.get("pid"), 0)
    return Resource(
        name=name,
        labels=tuple(sorted(str(k) for k in _obj(meta.get("labels")))),
        update_status=_str(st.get("updateStatus"), "none") or "none",
        runtime_status=_str(st.get("runtimeStatus"), "unknown") or "unknown",
        build_history=tuple(_decode_build(b) for b in _list(st.get("buildHistory"))),
        current_build=current_build,
        pending_build_since=_opt_str(st.get("pendingBuildSince")),
        last_deploy_time=_opt_str(st.get("lastDeployTime")),
        has_pending_changes=_bool(st.get("hasPendingChanges")),
        queued=_bool(st.get("queued")),
        trigger_mode=_int(st.get("triggerMode")),
        endpoints=tuple(
            Link(url=_str(_obj(e).get("url")), name=_opt_str(_obj(e).get("name")))
            for e in _list(st.get("endpointLinks"))
            if _str(_obj(e).get("url"))
        ),
        specs=tuple(
            Spec(
                id=_str(_obj(s).get("id")),
                type=_str(_obj(s).get("type"), "unspecified"),
                has_live_update=_bool(_obj(s).get("hasLiveUpdate")),
            )
            for s in _list(st.get("specs"))
        ),
        order=_int(st.get("order")),
        disable_state=_str(_obj(st.get("disableStatus")).get("state")),
        waiting=waiting,
        local_pid=pid or None,
        is_test=_bool(local.get("isTest")),
        k8s=k8s,
        compose_health=_opt_str(compose.get("healthStatus")),
        conditions=tuple(
            Condition(
                type=_str(_obj(c).get("type")),
                status=_str(_obj(c).get("status"), "Unknown"),
                last_transition_time=_opt_str(_obj(c).get("lastTransitionTime")),
                reason=_opt_str(_obj(c).get("reason")),
            )
            for c in _list(st.get("conditions"))
        ),
    )


def _decode_input(raw: object) -> ButtonInput:
    d = _obj(raw)
    name = _str(d.get("name"))
    label = _str(d.get("label"))
    if isinstance(d.get("text"), Mapping):
        t = _obj(d.get("text"))
        return ButtonInput(
            name=name,
            kind="text",
            label=label,
            default=_str(t.get("defaultValue")),
            placeholder=_opt_str(t.get("placeholder")),
        )
    if isinstance(d.get("bool"), Mapping):
        b = _obj(d.get("bool"))
        return ButtonInput(
            name=name, kind="bool", label=label, default=_bool(b.get("defaultValue"))
        )
    if isinstance(d.get("hidden"), Mapping):
        h = _obj(d.get("hidden"))
        return ButtonInput(name=name, kind="hidden", label=label, default=_str(h.get("value")))
    if isinstance(d.get("choice"), Mapping):
        c = _obj(d.get("choice"))
        choices = tuple(x for x in _list(c.get("choices")) if isinstance(x, str))
        return ButtonInput(
            name=name,
            kind="choice",
            label=label,
            default=choices[0] if choices else None,
            choices=choices,
        )
    return ButtonInput(name=name, kind="text", label=label)


def _decode_button(raw: object) -> Button:
    d = _obj(raw)
    meta = _obj(d.get("metadata"))
    name, deleted = _identity(meta, "uiButtons")
    if deleted:
        return Button(
            name=name,
            component_type="",
            component_id="",
            text="",
            resource_version="",
            metadata_json="{}",
            deleted=True,
        )
    spec = _obj(d.get("spec"))
    loc = _obj(spec.get("location"))
    status = _obj(d.get("status"))
    kept_meta = {k: v for k, v in meta.items() if k != "managedFields"}
    return Button(
        name=name,
        component_type=_str(loc.get("componentType")),
        component_id=_str(loc.get("componentID")),
        text=_str(spec.get("text")),
        resource_version=_str(meta.get("resourceVersion")),
        metadata_json=json.dumps(kept_meta, separators=(",", ":")),
        icon_name=_opt_str(spec.get("iconName")),
        disabled=_bool(spec.get("disabled")),
        requires_confirmation=_bool(spec.get("requiresConfirmation")),
        inputs=tuple(_decode_input(i) for i in _list(spec.get("inputs"))),
        button_type=_opt_str(_obj(meta.get("annotations")).get(BUTTON_TYPE_ANNOTATION)),
        last_clicked_at=_opt_str(status.get("lastClickedAt")),
    )


def _decode_session(raw: object) -> Session:
    st = _obj(_obj(raw).get("status"))
    build = _obj(st.get("runningTiltBuild"))
    version = _opt_str(build.get("version"))
    if version is not None:
        version = ("" if version.startswith("v") else "v") + version
        version += "-dev" if _bool(build.get("dev")) and not version.endswith("-dev") else ""
    return Session(
        version=version,
        commit_sha=_opt_str(build.get("commitSHA")),
        build_date=_opt_str(build.get("date")),
        tilt_start_time=_opt_str(st.get("tiltStartTime")),
        tiltfile_key=_opt_str(st.get("tiltfileKey")),
        fatal_error=_opt_str(st.get("fatalError")),
    )


_EMPTY_SEGMENT: Final = Segment("", "", "")


def _decode_segment(raw: object) -> Segment:
    # The hot path of a big frame: plain type checks, no helper calls.
    if type(raw) is not dict:
        return _EMPTY_SEGMENT
    span = raw.get("spanId", "")
    time = raw.get("time", "")
    text = raw.get("text", "")
    level = raw.get("level") or "INFO"
    if type(span) is not str:
        span = ""
    if type(time) is not str:
        time = ""
    if type(text) is not str:
        text = ""
    if type(level) is not str:
        level = "INFO"
    anchor = raw.get("anchor") is True
    fields = raw.get("fields")
    if fields is None:
        return Segment(span, time, text, level, anchor)
    fields = _obj(fields)
    return Segment(
        span,
        time,
        text,
        level,
        anchor,
        _opt_str(fields.get("progressID")),
        _opt_str(fields.get("buildEvent")),
    )


def _decode_log_list(raw: object) -> LogList:
    d = _obj(raw)
    spans = {
        str(span_id): _str(_obj(span).get("manifestName"))
        for span_id, span in _obj(d.get("spans")).items()
    }
    return LogList(
        spans=spans,
        segments=tuple(_decode_segment(s) for s in _list(d.get("segments"))),
        from_checkpoint=_int(d.get("fromCheckpoint")),
        to_checkpoint=_int(d.get("toCheckpoint")),
    )


def decode_view(raw: str | bytes) -> View:
    """Decode one websocket text message. Raises :class:`FrameError` if it is not a View."""
    try:
        # pydantic-core's Rust parser: 2-3x faster than json.loads on Tilt's 3.9 MB frame.
        data = from_json(raw)
    except ValueError as exc:
        raise FrameError(f"frame is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise FrameError(f"frame is a JSON {type(data).__name__}, expected an object")
    return decode_view_object(data, size=len(raw))


def decode_view_object(data: JSONObject, *, size: int = 0) -> View:
    """Decode an already-parsed View (``GET /api/view`` or a recorded frame)."""
    resources_raw = data.get("uiResources")
    buttons_raw = data.get("uiButtons")
    for key, value in (("uiResources", resources_raw), ("uiButtons", buttons_raw)):
        if value is not None and not isinstance(value, list):
            raise FrameError(f"frame field {key} is a {type(value).__name__}, expected a list")
    log_raw = data.get("logList")
    if log_raw is not None and not isinstance(log_raw, Mapping):
        raise FrameError(f"frame field logList is a {type(log_raw).__name__}, expected an object")
    session_raw = data.get("uiSession")
    return View(
        is_complete=_bool(data.get("isComplete")),
        tilt_start_time=_opt_str(data.get("tiltStartTime")),
        resources=None
        if resources_raw is None
        else tuple(_decode_resource(r) for r in _list(resources_raw)),
        buttons=None
        if buttons_raw is None
        else tuple(_decode_button(b) for b in _list(buttons_raw)),
        session=_decode_session(session_raw) if isinstance(session_raw, Mapping) else None,
        log_list=_decode_log_list(log_raw) if log_raw is not None else None,
        size=size,
    )
