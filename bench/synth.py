"""Synthetic ``/ws/view`` frames in the exact shape of the recorded ones, at any scale.

* resources: the 15 recorded resources of ``02-trigger-manual`` (plus its
  ``(Tiltfile)``) cloned round-robin under ``svc-000`` … ``svc-NNN``, with their
  buttons, so the mix of ok / error / pending / waiting states is Tilt's own;
* spans: resource *k* owns ``build:k+1`` and ``localserve:k+1`` (the recorded span
  shapes), ``tiltfile:(Tiltfile):1`` and the global ``""`` span are kept;
* segments: the recorded complete-line segments of every recording (texts, levels,
  ``buildEvent`` fields) cycled, each moved to a build or serve span of a resource
  according to its original span, with strictly increasing RFC 3339 times.

Everything is JSON text, ready for :func:`bridge.tilt.view.decode_view`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

from bench.common import recording

TEMPLATE_RECORDING: Final = "02-trigger-manual"
SEGMENT_RECORDINGS: Final = (
    "01-startup",
    "02-trigger-manual",
    "03-failing-build",
    "04-disable-enable",
    "05-uibutton-click",
    "06-tiltfile-edit",
    "08-log-truncation",
)
TILTFILE: Final = "(Tiltfile)"
TILTFILE_SPAN: Final = "tiltfile:(Tiltfile):1"
START: Final = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
SEGMENTS_PER_FRAME: Final = 1000

Obj = dict[str, Any]


def resource_name(k: int) -> str:
    return f"svc-{k:03d}"


@dataclass(frozen=True, slots=True)
class SegmentShape:
    text: str
    level: str
    build: bool  # came from a build span (else a serve span)
    fields: Obj | None


@cache
def _template_view() -> Obj:
    for raw in recording(TEMPLATE_RECORDING)[0]:
        view: Obj = json.loads(raw)
        if view.get("isComplete"):
            return view
    raise LookupError(f"{TEMPLATE_RECORDING} has no complete view")


@cache
def segment_shapes() -> tuple[SegmentShape, ...]:
    """Recorded complete-line segments, in recorded order, one of each distinct text.

    ``progressID`` segments are left out (they overwrite a line instead of adding
    one), and so are unterminated ones (they join the next segment), so every
    synthetic segment is exactly one new held line. The 08 recording's 20 000 spam
    lines are thinned to the same weight as one chatty resource.
    """
    shapes: list[SegmentShape] = []
    seen: set[str] = set()
    spam = 0
    for name in SEGMENT_RECORDINGS:
        for conn in recording(name):
            for raw in conn:
                for seg in (json.loads(raw).get("logList") or {}).get("segments") or ():
                    text = seg.get("text", "")
                    span = seg.get("spanId", "")
                    fields = seg.get("fields") or None
                    if not text.endswith("\n") or (fields and "progressID" in fields):
                        continue
                    if not span:
                        continue
                    if text.startswith("spam line"):
                        spam += 1
                        if spam > 40:
                            continue
                    if text in seen:
                        continue
                    seen.add(text)
                    build = not span.startswith(("localserve:", "pod:", "dc:"))
                    shapes.append(SegmentShape(text, seg.get("level", "INFO"), build, fields))
    return tuple(shapes)


def _clone_resource(template: Obj, name: str, k: int) -> Obj:
    res = copy.deepcopy(template)
    old = res["metadata"]["name"]
    meta = res["metadata"]
    meta["name"] = name
    meta["uid"] = f"00000000-0000-4000-8000-{k:012d}"
    meta.setdefault("annotations", {})["tilt.dev/resource"] = name
    status = res["status"]
    for build in status.get("buildHistory") or ():
        build["spanID"] = f"build:{k + 1}"
    if status.get("currentBuild", {}).get("spanID"):
        status["currentBuild"]["spanID"] = f"build:{k + 1}"
    for spec in status.get("specs") or ():
        spec["id"] = spec["id"].replace(old, name)
    for source in (status.get("disableStatus") or {}).get("sources") or ():
        if "configMap" in source:
            source["configMap"]["name"] = f"{name}-disable"
    status["order"] = k + 2
    return res


def _clone_button(template: Obj, old: str, name: str) -> Obj:
    btn = copy.deepcopy(template)
    meta = btn["metadata"]
    meta["name"] = meta["name"].replace(old, name, 1)
    meta.setdefault("annotations", {})["tilt.dev/resource"] = name
    btn["spec"]["location"]["componentID"] = name
    return btn


def spans(n_resources: int) -> dict[str, Obj]:
    out: dict[str, Obj] = {"": {}, TILTFILE_SPAN: {"manifestName": TILTFILE}}
    for k in range(n_resources):
        out[f"build:{k + 1}"] = {"manifestName": resource_name(k)}
        out[f"localserve:{k + 1}"] = {"manifestName": resource_name(k)}
    return out


def complete_view(n_resources: int) -> str:
    """A complete view with ``n_resources`` cloned resources (plus the Tiltfile), no logs."""
    view = _template_view()
    templates = [r for r in view["uiResources"] if r["metadata"]["name"] != TILTFILE]
    tiltfile = next(r for r in view["uiResources"] if r["metadata"]["name"] == TILTFILE)
    resources = [copy.deepcopy(tiltfile)]
    buttons = [
        copy.deepcopy(b)
        for b in view.get("uiButtons") or ()
        if b["spec"]["location"].get("componentID") in (TILTFILE, "")
        or b["spec"]["location"].get("componentType") != "Resource"
    ]
    for k in range(n_resources):
        template = templates[k % len(templates)]
        name = resource_name(k)
        old = template["metadata"]["name"]
        resources.append(_clone_resource(template, name, k))
        buttons.extend(
            _clone_button(b, old, name)
            for b in view.get("uiButtons") or ()
            if b["spec"]["location"].get("componentType") == "Resource"
            and b["spec"]["location"].get("componentID") == old
        )
    out = {
        "logList": {"spans": spans(n_resources), "segments": [], "toCheckpoint": 0},
        "tiltStartTime": view["tiltStartTime"],
        "uiSession": view["uiSession"],
        "uiResources": resources,
        "uiButtons": buttons,
        "isComplete": True,
    }
    return json.dumps(out, separators=(",", ":"))


def tilt_start_time() -> str:
    return str(_template_view()["tiltStartTime"])


def _time(i: int) -> str:
    return (START + timedelta(microseconds=37 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def segment(i: int, n_resources: int) -> Obj:
    """The ``i``-th synthetic segment: recorded shape ``i % len(shapes)``, resource ``i % n``."""
    shapes = segment_shapes()
    shape = shapes[i % len(shapes)]
    k = (i // len(shapes) + i) % n_resources
    span = f"build:{k + 1}" if shape.build else f"localserve:{k + 1}"
    seg: Obj = {"spanId": span, "time": _time(i), "text": shape.text, "level": shape.level}
    if shape.fields:
        seg["fields"] = shape.fields
    return seg


def delta_frames(
    n_segments: int,
    n_resources: int,
    *,
    per_frame: int = SEGMENTS_PER_FRAME,
    first: int = 0,
) -> Iterator[str]:
    """Delta frames carrying segments ``first`` … ``first + n_segments - 1``.

    Checkpoints continue from ``first`` (a store fed :func:`complete_view` first has
    ``last_to == 0``), so every frame is an exact append.
    """
    start = tilt_start_time()
    end = first + n_segments
    for lo in range(first, end, per_frame):
        hi = min(end, lo + per_frame)
        segs = [segment(i, n_resources) for i in range(lo, hi)]
        used = {s["spanId"] for s in segs}
        span_map = {s: {"manifestName": s and _span_owner(s, n_resources)} for s in sorted(used)}
        frame = {
            "logList": {
                "spans": span_map,
                "segments": segs,
                "fromCheckpoint": lo,
                "toCheckpoint": hi,
            },
            "tiltStartTime": start,
        }
        yield json.dumps(frame, separators=(",", ":"))


def _span_owner(span: str, n_resources: int) -> str:
    k = int(span.rpartition(":")[2]) - 1
    return resource_name(k) if 0 <= k < n_resources else ""
