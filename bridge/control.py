"""Acting on Tilt over its HTTP API (never the ``tilt`` binary), confirmed from the stream.

Each action validates against the cache first (unknown names get close
matches), calls Tilt, and where the effect is visible in ``/ws/view`` waits for
it there instead of polling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import anyio

from bridge.core.logbuffer import LogLine, parse_time_us
from bridge.core.state import State
from bridge.errors import TiltConflict, ToolError, UnknownResource
from bridge.log import get_logger
from bridge.store import Store
from bridge.tilt.view import TRIGGER_MODES, Button, ButtonInput, Resource
from bridge.waiting import (
    MAX_NAME_CHARS,
    TriggeredBuild,
    WaitResult,
    checked_names,
    quoted,
    until_connected,
    wait_for,
)

log = get_logger("bridge.control")

MODE_NAMES: Final = {v: k for k, v in TRIGGER_MODES.items()}
CONFIRM_TIMEOUT_S: Final = 10.0
CONFLICT_WAIT_S: Final = 2.0
DISABLED_BODY: Final = "is currently disabled"
MAX_INPUTS: Final = 50
MAX_INPUT_CHARS: Final = 10_000
MAX_ARGS: Final = 100
MAX_ARG_CHARS: Final = 4096


class TiltWrites(Protocol):
    """What the controller needs from Tilt's HTTP API (:class:`bridge.tilt.client.TiltHTTP`)."""

    async def trigger(self, resource: str) -> str: ...

    async def set_trigger_mode(self, resources: Sequence[str], mode: int) -> None: ...

    async def set_tiltfile_args(self, args: Sequence[str]) -> None: ...

    async def put_button_status(
        self, name: str, metadata_json: str, inputs: Sequence[Mapping[str, object]]
    ) -> Mapping[str, object]: ...


def _checked_name(kind: str, name: str) -> str:
    if len(name) > MAX_NAME_CHARS:
        raise ToolError(
            f"no {kind} name is longer than {MAX_NAME_CHARS} characters; got {len(name)}: "
            f"{quoted(name)}"
        )
    return name


def toggle_name(resource: str) -> str:
    return f"toggle-{resource}-disable"


@dataclass(frozen=True, slots=True)
class TriggerResult:
    resource: str
    triggered: bool
    outcome: str  # triggered | ok | error | timeout
    error: str | None = None
    wait: WaitResult | None = None


@dataclass(frozen=True, slots=True)
class ToggleResult:
    resource: str
    changed: bool
    state: str  # Enabled | Disabled | …
    confirmed: bool


class Controller:
    def __init__(self, store: Store, http: TiltWrites) -> None:
        self.store = store
        self.http = http

    # ------------------------------------------------------------------ lookups

    def resource(self, name: str) -> Resource:
        res = self.store.state.resources.get(_checked_name("resource", name))
        if res is None:
            raise UnknownResource("resource", name, self.store.state.resources.keys())
        return res

    def button(self, name: str) -> Button:
        btn = self.store.state.buttons.get(_checked_name("button", name))
        if btn is None:
            raise UnknownResource("button", name, self.store.state.buttons.keys())
        return btn

    # ------------------------------------------------------------------ trigger

    async def trigger(self, name: str, *, wait: bool, timeout_s: float) -> TriggerResult:
        """POST the trigger; with ``wait``, follow the stream until the build it caused
        finishes. That build is told by what Tilt sends after the POST (a new build span
        whose init reason is a trigger: :class:`TriggeredBuild`), never by comparing
        Tilt's times with ours."""
        await until_connected(self.store, min(timeout_s, CONFIRM_TIMEOUT_S))
        res = self.resource(name)
        if res.disabled:
            raise ToolError(f"resource {name!r} is disabled; call enable([{name!r}]) first")
        awaited = TriggeredBuild.before(self.store.state, name)
        body = await self.http.trigger(name)
        if DISABLED_BODY in body:
            # Tilt answers 200 with this body when the resource is disabled
            raise ToolError(f"Tilt did not trigger {name!r}: {body}. Call enable first.")
        self.store.mark_triggered(name)
        log.info("tilt.control.triggered", resource=name)
        if not wait:
            return TriggerResult(name, True, "triggered")
        result = await wait_for(self.store, [name], "build_finished", timeout_s, triggered=awaited)
        if result.timed_out:
            return TriggerResult(name, True, "timeout", wait=result)
        outcome = result.outcomes[0]
        return TriggerResult(
            name,
            True,
            "ok" if outcome.ok else "error",
            error=None if outcome.ok else outcome.reason,
            wait=result,
        )

    def build_lines(self, name: str, limit: int = 30) -> list[LogLine]:
        """The log lines of the resource's newest build: errors first, then the tail."""
        res = self.store.state.resources.get(name)
        if res is None:
            return []
        began: str | None
        if res.current_build is not None and res.current_build.start_time:
            began = res.current_build.start_time  # still running (e.g. a timeout)
        elif res.build_history:
            began = res.build_history[0].start_time
        else:
            return []
        start = parse_time_us(began or "")
        lines = []
        for line in self.store.logs.newest_first([name]):
            if line.time_us < start:
                break
            lines.append(line)
        lines.reverse()
        return lines[-limit:]

    # ------------------------------------------------------------------ enable / disable

    async def set_enabled(self, names: Sequence[str], enabled: bool) -> list[ToggleResult]:
        names = checked_names(names)
        for name in names:
            self.resource(name)
            self.button(toggle_name(name))
        results = []
        for name in names:
            results.append(await self._toggle(name, enabled))
        return results

    async def enable_only(self, names: Sequence[str]) -> list[ToggleResult]:
        names = checked_names(names)
        for name in names:
            self.resource(name)
        others = [
            r.name
            for r in self.store.state.ordered()
            if r.name not in names and toggle_name(r.name) in self.store.state.buttons
        ]
        results = await self.set_enabled(list(names), True)
        results += await self.set_enabled(others, False)
        return results

    async def _toggle(self, name: str, enabled: bool) -> ToggleResult:
        want = "Enabled" if enabled else "Disabled"
        res = self.resource(name)
        if res.disable_state == want or (enabled and res.disable_state == ""):
            return ToggleResult(name, False, res.disable_state or "Enabled", True)
        action = "off" if enabled else "on"
        await self._click(toggle_name(name), {"action": action}, allow_hidden=True)
        confirmed = await self._await(
            lambda s: (r := s.resources.get(name)) is not None and r.disable_state == want
        )
        state = self.store.state.resources.get(name)
        return ToggleResult(name, True, state.disable_state if state else "gone", confirmed)

    async def _await(
        self, predicate: Callable[[State], bool], timeout_s: float = CONFIRM_TIMEOUT_S
    ) -> bool:
        with anyio.move_on_after(timeout_s):
            while not predicate(self.store.state):
                await self.store.wait_changed(self.store.version)
            return True
        return False

    # ------------------------------------------------------------------ buttons

    async def click(self, name: str, inputs: Mapping[str, object] | None) -> Button:
        btn = self.button(name)
        if btn.disabled:
            raise ToolError(f"button {name!r} is disabled in Tilt right now")
        await self._click(name, inputs or {}, allow_hidden=False)
        return self.store.state.buttons.get(name, btn)

    async def _click(self, name: str, given: Mapping[str, object], *, allow_hidden: bool) -> None:
        btn = self.button(name)
        payload = build_inputs(btn, given, allow_hidden=allow_hidden)
        try:
            await self.http.put_button_status(name, btn.metadata_json, payload)
        except TiltConflict as first:
            # Our copy is stale: wait briefly for the stream to bring the newest object.
            stale = btn.resource_version
            fresh = await self._await(
                lambda s: (b := s.buttons.get(name)) is not None and b.resource_version != stale,
                CONFLICT_WAIT_S,
            )
            if not fresh:
                raise TiltConflict(
                    f"button {name!r} changed in Tilt (409 on resourceVersion {stale}) and the "
                    f"stream brought no newer version within {CONFLICT_WAIT_S}s; is the "
                    "connection to Tilt healthy (get_status)? Then try again"
                ) from first
            btn = self.button(name)
            try:
                await self.http.put_button_status(name, btn.metadata_json, payload)
            except TiltConflict as exc:
                raise TiltConflict(
                    f"button {name!r} kept changing under us (409 twice, resourceVersion "
                    f"{stale} then {btn.resource_version}); try again in a moment"
                ) from exc
        log.info("tilt.control.clicked", button=name)

    # ------------------------------------------------------------------ misc

    async def set_trigger_mode(self, name: str, mode: str) -> int:
        self.resource(name)
        if mode not in MODE_NAMES:
            raise ToolError(
                f"mode must be one of {', '.join(MODE_NAMES)}; got {quoted(mode)} "
                "(manual: build only when triggered; *_no_init: skip the initial build)"
            )
        value = MODE_NAMES[mode]
        await self.http.set_trigger_mode([name], value)
        # Tilt overrides the mode in its engine; its UIResource shows it a frame later
        await self._await(
            lambda s: (r := s.resources.get(name)) is not None and r.trigger_mode == value
        )
        return value

    async def set_tiltfile_args(self, args: Sequence[str]) -> None:
        if any(not isinstance(a, str) for a in args):
            raise ToolError("args must be a list of strings")
        if len(args) > MAX_ARGS:
            raise ToolError(f"at most {MAX_ARGS} Tiltfile args; got {len(args)}")
        for arg in args:
            if len(arg) > MAX_ARG_CHARS:
                raise ToolError(
                    f"a Tiltfile arg is at most {MAX_ARG_CHARS} characters; got {len(arg)}: "
                    f"{quoted(arg)}"
                )
        await self.http.set_tiltfile_args(list(args))


def build_inputs(
    btn: Button, given: Mapping[str, object], *, allow_hidden: bool
) -> list[dict[str, object]]:
    """Validate ``given`` against the button's declared inputs; fill defaults and hidden
    values. Returns Tilt's ``status.inputs`` list."""
    declared = {i.name: i for i in btn.inputs}
    visible = [i.name for i in btn.inputs if i.kind != "hidden"]
    if len(given) > MAX_INPUTS:
        raise ToolError(f"button {btn.name!r} takes at most {MAX_INPUTS} inputs; got {len(given)}")
    for key in given:
        spec = declared.get(key)
        if spec is None or (spec.kind == "hidden" and not allow_hidden):
            listed = ", ".join(visible) if visible else "none"
            raise ToolError(f"button {btn.name!r} has no input {quoted(key)}; its inputs: {listed}")
    out: list[dict[str, object]] = []
    for spec in btn.inputs:
        value = given.get(spec.name, spec.default)
        out.append({"name": spec.name, spec.kind: {"value": _check(btn, spec, value)}})
    return out


def _check(btn: Button, spec: ButtonInput, value: object) -> object:
    where = f"input {spec.name!r} of button {btn.name!r}"
    if spec.kind == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ToolError(f"{where} takes true or false; got {quoted(repr(value))}")
        return value
    if spec.kind == "choice":
        if value not in spec.choices:
            raise ToolError(
                f"{where} must be one of {', '.join(spec.choices)}; got {quoted(str(value))}"
            )
        return value
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ToolError(f"{where} takes text; got {quoted(repr(value))}")
    text = str(value)
    if len(text) > MAX_INPUT_CHARS:
        raise ToolError(
            f"{where} takes at most {MAX_INPUT_CHARS} characters; got {len(text)}: {quoted(text)}"
        )
    return text
