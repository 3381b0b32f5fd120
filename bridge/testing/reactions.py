"""Tilt's reactions to write calls, pure: a build, disabling a resource, a button's command.

Each function reads the :class:`~bridge.testing.model.TiltModel` and returns the next
delta View (wire format). The server applies it with :meth:`TiltModel.apply` and
broadcasts it, exactly like a recorded delta. Shapes and texts follow the recordings
(02, 03, 04, 05).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bridge.testing.model import JSONDict, Obj, TiltModel, delta, segment

__all__ = [
    "BUILD_HISTORY_LIMIT",
    "BUTTON_COMMANDS",
    "build_error",
    "build_finished",
    "build_queued",
    "build_script",
    "build_started",
    "bumped",
    "button_command",
    "input_values",
    "require_resource",
    "resource_disabled",
    "resource_enabled",
    "resource_enabling",
    "trigger_mode_set",
]

BUILD_HISTORY_LIMIT: Final = 2
"""Tilt keeps the two newest builds in ``buildHistory``."""

BUTTON_COMMANDS: Final[Mapping[str, tuple[str, str]]] = {
    "ok-hello": ('echo "hello $WHO from button"', "hello {WHO} from button\n"),
}
"""Custom buttons whose command the fake runs: name → (command line, output template).

The template is formatted with the click's input values (or the inputs' defaults).
"""


def _set_condition(status: Obj, ctype: str, value: str, reason: str | None, now: str) -> None:
    """Set a condition; ``lastTransitionTime`` changes only when the status flips."""
    conds: list[Obj] = status.setdefault("conditions", [])
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


def bumped(model: TiltModel, obj: Obj) -> Obj:
    """A copy of ``obj`` with the next ``resourceVersion``."""
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {})["resourceVersion"] = model.next_rv()
    return out


def require_resource(model: TiltModel, name: str) -> Obj:
    """The model's UIResource ``name``; :class:`LookupError` if there is none."""
    try:
        return model.resources[name]
    except KeyError:
        raise LookupError(f"no resource named {name!r}") from None


def _is_serve_only(resource: Mapping[str, Any]) -> bool:
    """A ``serve_cmd``-only resource: nothing to update, its updateStatus is not_applicable."""
    return bool((resource.get("status") or {}).get("updateStatus") == "not_applicable")


def build_script(model: TiltModel, name: str) -> tuple[str | None, list[str]]:
    """The update command's "Running cmd:" line and its output, from the last build's logs.

    A resource whose command never ran (``auto_init=False``) falls back to
    ``echo "<name> ran"``, which is what the demo Tiltfile's lazy resources run.
    A serve-only resource has no update command.
    """
    res = require_resource(model, name)
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
            and model.logs.manifest_of(span_id) == name
            and text.startswith("Running cmd: ")
        ):
            return text[len("Running cmd: ") :].rstrip("\n")
    return None


def build_error(model: TiltModel, name: str) -> str | None:
    """How the next build of ``name`` ends: None (success) or the error text.

    An explicit :attr:`TiltModel.build_errors` entry wins; otherwise a resource
    whose last build failed fails again the same way (``fail`` keeps failing), and a
    cancelled build does not count.
    """
    if name in model.build_errors:
        return model.build_errors[name]
    history = (require_resource(model, name).get("status") or {}).get("buildHistory") or []
    if history and history[0].get("error") and history[0]["error"] != "build canceled":
        return str(history[0]["error"])
    return None


def build_queued(
    model: TiltModel, name: str, *, span: str, now: str, reason: str, cmd: str | None
) -> JSONDict:
    """Trigger accepted: ``queued`` + ``pending``, the build's init line and command line."""
    res = bumped(model, require_resource(model, name))
    status = res.setdefault("status", {})
    status["queued"] = True
    if not _is_serve_only(res):
        status["updateStatus"] = "pending"
    _set_condition(status, "UpToDate", "False", "UpdatePending", now)
    _set_condition(status, "Ready", "False", "UpdatePending", now)
    segs = [segment(span, now, f"{reason}\n", fields={"buildEvent": "init"})]
    spans = {span: name}
    if cmd is not None:
        segs.append(segment(f"cmd:{name}:update", now, cmd))
        spans[f"cmd:{name}:update"] = name
    return delta(resources=[res], segments=segs, spans=spans)


def build_started(
    model: TiltModel, name: str, *, span: str, start: str, now: str, output: Sequence[str]
) -> JSONDict:
    """The build runs: ``in_progress`` + ``currentBuild``, and the command's output."""
    res = bumped(model, require_resource(model, name))
    status = res.setdefault("status", {})
    status.pop("queued", None)
    status["currentBuild"] = {"startTime": start, "spanID": span}
    if not _is_serve_only(res):
        status["updateStatus"] = "in_progress"
    _set_condition(status, "UpToDate", "False", "Unknown", now)
    _set_condition(status, "Ready", "False", "Unknown", now)
    segs = [segment(f"cmd:{name}:update", now, text) for text in output]
    return delta(resources=[res], segments=segs, spans={f"cmd:{name}:update": name})


def build_finished(
    model: TiltModel, name: str, *, span: str, start: str, now: str, error: str | None
) -> JSONDict:
    """The build ends: a new ``buildHistory[0]``; on error the ERROR anchor and UpdateError."""
    res = bumped(model, require_resource(model, name))
    status = res.setdefault("status", {})
    status.pop("queued", None)
    status.pop("currentBuild", None)
    record: Obj = {"startTime": start, "finishTime": now, "spanID": span}
    segs: list[Obj] = []
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
        segs.append(segment(span, now, f"Build Failed: {error}", level="ERROR", anchor=True))
    history = [record, *(status.get("buildHistory") or [])]
    status["buildHistory"] = history[:BUILD_HISTORY_LIMIT]
    return delta(resources=[res], segments=segs, spans={span: name})


def _toggle_spec(button: Obj, *, disabled: bool) -> None:
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
    res = bumped(model, require_resource(model, name))
    status = res.setdefault("status", {})
    for key in ("buildHistory", "currentBuild", "queued"):
        status.pop(key, None)
    status["updateStatus"] = "none"
    status["runtimeStatus"] = "none"
    ds = status.setdefault("disableStatus", {})
    ds.update({"enabledCount": 0, "disabledCount": 1, "state": "Disabled"})
    _set_condition(status, "UpToDate", "False", "Disabled", now)
    _set_condition(status, "Ready", "False", "Disabled", now)
    segs: list[Obj] = []
    spans: dict[str, str] = {}
    serve = _serve_cmd(model, name)
    if serve is not None:
        quoted = json.dumps(serve)
        text = f'Resource is disabled, stopping cmd ["sh" "-c" {quoted}]\n'
        segs.append(segment(f"CmdServer-{name}", now, text))
        spans[f"CmdServer-{name}"] = name
    text = f'Resource "{name}" disabled. To enable/disable it, use the Tilt Web UI.\n'
    segs.append(segment(f"disabletoggle-{name}", now, text))
    spans[f"disabletoggle-{name}"] = name
    buttons = []
    toggle = model.buttons.get(f"toggle-{name}-disable")
    if toggle is not None:
        toggle = bumped(model, toggle)
        _toggle_spec(toggle, disabled=True)
        buttons.append(toggle)
    return delta(resources=[res], buttons=buttons, segments=segs, spans=spans)


def resource_enabling(model: TiltModel, name: str, *, now: str) -> JSONDict:
    """``toggle-<res>-disable`` with ``off``, first step: Enabled and pending."""
    res = bumped(model, require_resource(model, name))
    status = res.setdefault("status", {})
    ds = status.setdefault("disableStatus", {})
    ds.update({"enabledCount": 1, "disabledCount": 0, "state": "Enabled"})
    status["updateStatus"] = "pending"
    status["runtimeStatus"] = "pending" if _has_server(model, name) else "not_applicable"
    _set_condition(status, "UpToDate", "False", "UpdatePending", now)
    _set_condition(status, "Ready", "False", "UpdatePending", now)
    return delta(resources=[res])


def _has_server(model: TiltModel, name: str) -> bool:
    return _serve_cmd(model, name) is not None


def resource_enabled(model: TiltModel, name: str, *, span: str, now: str) -> JSONDict:
    """Second step of enabling: the "Initial Build", the server restarted, button flipped."""
    serve = _serve_cmd(model, name)
    res = bumped(model, require_resource(model, name))
    status = res.setdefault("status", {})
    text = f'Resource "{name}" enabled. To enable/disable it, use the Tilt Web UI.\n'
    segs = [
        segment(f"disabletoggle-{name}", now, text),
        segment(span, now, "Initial Build\n", fields={"buildEvent": "init"}),
    ]
    spans = {f"disabletoggle-{name}": name, span: name}
    if serve is not None:
        serve_span = model.next_span("localserve")
        segs.append(segment(serve_span, now, f"Running cmd: {serve}\n"))
        spans[serve_span] = name
        status["updateStatus"] = "not_applicable"
        status["runtimeStatus"] = "ok"
    else:
        cmd, output = build_script(model, name)
        if cmd is not None:
            segs.append(segment(f"cmd:{name}:update", now, cmd))
            segs += [segment(f"cmd:{name}:update", now, t) for t in output]
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
        toggle = bumped(model, toggle)
        _toggle_spec(toggle, disabled=False)
        buttons.append(toggle)
    return delta(resources=[res], buttons=buttons, segments=segs, spans=spans)


def input_values(button: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A click's input values by name: the button's defaults, overridden by ``inputs``."""
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
    values = input_values(button, inputs)
    manifest = str(((button.get("spec") or {}).get("location") or {}).get("componentID", ""))
    span = f"cmd:{name}"
    try:
        output = template.format(**values)
    except KeyError:
        output = template
    segs = [segment(span, now, f"Running cmd: {cmd}\n"), segment(span, now, output)]
    return delta(segments=segs, spans={span: manifest})


def trigger_mode_set(model: TiltModel, names: Sequence[str], mode: int) -> JSONDict:
    """``POST /api/override/trigger_mode``: ``status.triggerMode`` (0: the key removed)."""
    changed = []
    for name in names:
        res = bumped(model, require_resource(model, name))
        status = res.setdefault("status", {})
        if mode:
            status["triggerMode"] = mode
        else:
            status.pop("triggerMode", None)
        changed.append(res)
    return delta(resources=changed)
