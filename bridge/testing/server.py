"""The fake Tilt's server (:class:`FakeTilt`): Tilt's HUD server on one port.

It checks auth like Tilt (token, csrf, ``Origin``), sends each websocket client a
complete view and then deltas with checkpoints counted for that client, and answers
Tilt's write endpoints with Tilt's status codes and bodies (:mod:`bridge.testing.api`).
Every change, from a test's :meth:`FakeTilt.send` or from a reaction
(:mod:`bridge.testing.reactions`), goes through the same path: merge into the model,
broadcast. The sockets are :mod:`bridge.testing.wire`'s, so the fake can also
misbehave: drop connections (1006), hang, go down and come back on the same port.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final, TypeAlias

import anyio
import anyio.abc

from bridge.testing.api import (
    BUILD_REASONS,
    MICRO_RE,
    WS_FORBIDDEN_BODY,
    csrf_of,
    dumps,
    go_error,
    json_body,
    json_response,
    k8s_status,
    origin_ok,
    text_response,
    token_of,
)
from bridge.testing.logstore import MAX_LOG_BYTES
from bridge.testing.model import (
    Change,
    JSONObject,
    Obj,
    TiltModel,
    as_view,
    is_disabled,
    micro_time,
)
from bridge.testing.reactions import (
    build_error,
    build_finished,
    build_queued,
    build_script,
    build_started,
    bumped,
    button_command,
    input_values,
    require_resource,
    resource_disabled,
    resource_enabled,
    resource_enabling,
    trigger_mode_set,
)
from bridge.testing.recordings import (
    DEFAULT_INITIAL,
    Connection,
    Marker,
    Recording,
    load_recording,
)
from bridge.testing.wire import (
    ConnectionGone,
    HTTPRequest,
    HTTPResponse,
    WebSocket,
    WireServer,
)

__all__ = ["DEFAULT_TOKEN", "MAX_MESSAGE_BYTES", "FakeTilt", "InitialState", "RecordedRequest"]

DEFAULT_TOKEN: Final = "3c8f6f2e-9b1d-4c47-a6e2-5d0f7b9e4a21"
"""The session token a :class:`FakeTilt` uses unless told otherwise."""

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""The largest websocket message the fake reads from a client."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


def _initial_view(initial: InitialState) -> Obj:
    if initial is None:
        initial = DEFAULT_INITIAL
    if isinstance(initial, str):
        initial = load_recording(initial)
    if isinstance(initial, Recording):
        initial = initial.connections[0]
    if isinstance(initial, Connection):
        return initial.complete_view()
    return as_view(initial)


class FakeTilt:
    """A model of Tilt's HUD server on ``127.0.0.1``: ``/ws/view``, ``/api/*``, ``/proxy/*``.

    Use it as ``async with FakeTilt() as tilt:`` (any anyio backend: the server runs
    in the caller's event loop). Inside, ``tilt.base_url`` answers like Tilt and :meth:`send`,
    :meth:`replay`, :meth:`drop`, :meth:`restart` drive it. See the package docstring.

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
        self._toggle_processed: dict[str, datetime] = {}
        """When (on this Tilt's clock) each toggle button's last taken click was processed."""
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
        self._wire = WireServer(
            host=self.host,
            http=self._http,
            websocket=self._websocket,
            max_message_bytes=MAX_MESSAGE_BYTES,
        )

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
        assert self._tg is not None, "FakeTilt must be used as `async with FakeTilt() as tilt`"
        if self._wire.listening:
            return
        self.port = await self._wire.listen(self._tg, self.port)

    async def stop(self) -> None:
        """Stop listening and drop every connection (websockets see 1006), like Tilt exiting."""
        if not self._wire.listening:
            return
        await self._wire.close()
        await self._abort(websockets_only=False)

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
        self._toggle_processed.clear()  # the reconciler's memory is the process's
        if down_s > 0:
            await self.stop()
        now = self._now()
        async with self._lock:
            # Drop and renew under the lock: no client sees the old process after this.
            dropped = self._wire.abort(websockets_only=True)
            self._clients.clear()
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
            for done in dropped:
                await done.wait()
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
        await self._abort(websockets_only=True)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close every websocket cleanly with ``code``."""
        for client in list(self._sockets):
            with anyio.move_on_after(5), contextlib.suppress(ConnectionGone):
                await client.ws.close(code, reason)

    async def _abort(self, *, websockets_only: bool) -> None:
        self._clients.clear()
        with anyio.fail_after(5):
            for done in self._wire.abort(websockets_only=websockets_only):
                await done.wait()
            await self.wait_connected(0)

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
                await self._send_to(client, dumps(frame) + "\n")

    async def _send_to(self, client: _Client, text: str) -> None:
        try:
            await client.ws.send_text(text)
        except ConnectionGone:
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

    async def _step(self, make: Callable[[], Obj | None]) -> None:
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
        if is_disabled(require_resource(self.model, name)):
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

    async def _after_click(self, name: str, inputs: list[Obj]) -> None:
        model = self.model
        if name.startswith("toggle-") and name.endswith("-disable"):
            res = name[len("toggle-") : -len("-disable")]
            if res not in model.resources:
                return
            action = input_values(model.buttons.get(name, {}), inputs).get("action")
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

    # ---------------------------------------------------------------- HTTP

    def _record(self, request: HTTPRequest, status: int) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                status=status,
            )
        )

    def _token_ok(self, request: HTTPRequest) -> bool:
        return self.token is None or token_of(request) == self.token

    async def _http(self, request: HTTPRequest) -> HTTPResponse:
        response = await self._route(request)
        self._record(request, response.status)
        # Go's net/http stamps every answer with the server's clock, as Tilt's does
        date = format_datetime(self._clock().astimezone(UTC), usegmt=True)
        return replace(response, headers=(*response.headers, ("date", date)))

    async def _route(self, request: HTTPRequest) -> HTTPResponse:
        path = request.path
        if not origin_ok(request.headers):
            return go_error("Forbidden", 403)
        if path == "/":
            cookie: tuple[tuple[str, str], ...] = ()
            if "origin" not in request.headers and self.token is not None:
                cookie = (("set-cookie", f"Tilt-Token={self.token}; Path=/; SameSite=strict"),)
            page = b"<!doctype html><title>Tilt (fake)</title>\n"
            return HTTPResponse(200, page, "text/html; charset=utf-8", cookie)
        if path.startswith(("/api/", "/proxy/")) and not self._token_ok(request):
            return go_error("Forbidden", 403)
        method = request.method
        routes: dict[tuple[str, str], Callable[[HTTPRequest], Awaitable[HTTPResponse]]] = {
            ("GET", "/api/websocket_token"): self._api_websocket_token,
            ("GET", "/api/view"): self._api_view,
            ("POST", "/api/trigger"): self._api_trigger,
            ("POST", "/api/override/trigger_mode"): self._api_trigger_mode,
            ("POST", "/api/set_tiltfile_args"): self._api_tiltfile_args,
        }
        handler = routes.get((method, path))
        if handler is not None:
            return await handler(request)
        m = re.fullmatch(r"/proxy/apis/tilt\.dev/v1alpha1/uibuttons/([^/]+)/status", path)
        if m and method == "PUT":
            return await self._put_button_status(request, m.group(1))
        if path.startswith("/proxy/"):
            return go_error("Forbidden", 403)
        if any(p == path for _, p in routes):
            return go_error("must be POST request", 400)
        return go_error("404 page not found", 404)

    async def _api_websocket_token(self, request: HTTPRequest) -> HTTPResponse:
        return text_response(self.csrf)

    async def _api_view(self, request: HTTPRequest) -> HTTPResponse:
        async with self._lock:
            body = dumps(self.model.complete_view()) + "\n"
        return json_response(body, 200)

    async def _api_trigger(self, request: HTTPRequest) -> HTTPResponse:
        payload, err = json_body(request)
        if err or not isinstance(payload, dict):
            return go_error(err or "error parsing JSON payload", 400)
        names = payload.get("manifest_names")
        if not isinstance(names, list) or len(names) != 1:
            n = len(names) if isinstance(names, list) else 0
            return go_error(
                f"/api/trigger currently supports exactly one manifest name, got {n}", 400
            )
        name = str(names[0])
        if name not in self.model.resources:
            return go_error(f"no manifest found with name '{name}'", 404)
        if is_disabled(self.model.resources[name]):
            return text_response(f'resource "{name}" is currently disabled')
        reason = payload.get("build_reason")
        self.trigger(
            name,
            reason=BUILD_REASONS.get(reason if isinstance(reason, int) else 16, "Web Trigger"),
        )
        return HTTPResponse(200)

    async def _api_trigger_mode(self, request: HTTPRequest) -> HTTPResponse:
        payload, err = json_body(request, {"manifest_names", "trigger_mode"})
        if err or not isinstance(payload, dict):
            return go_error(err or "error parsing JSON payload", 400)
        names = payload.get("manifest_names")
        mode = payload.get("trigger_mode")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return go_error("error parsing JSON payload: manifest_names must be strings", 400)
        for n in names:
            if n not in self.model.resources:
                return go_error(f"no manifest found with name '{n}'", 400)
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 3:
            return go_error(f"invalid trigger mode: {mode}", 400)

        await self._step(lambda: trigger_mode_set(self.model, names, mode))
        return HTTPResponse(200)

    async def _api_tiltfile_args(self, request: HTTPRequest) -> HTTPResponse:
        payload, err = json_body(request)
        if err:
            return go_error(err, 400)
        if not isinstance(payload, list) or not all(isinstance(a, str) for a in payload):
            return go_error("error parsing JSON payload: expected a list of strings", 400)
        self.model.tiltfile_args = list(payload)
        return HTTPResponse(200)

    async def _put_button_status(self, request: HTTPRequest, name: str) -> HTTPResponse:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return json_response(k8s_status(400, "BadRequest", str(exc)), 400)
        if name not in self.model.buttons:
            return json_response(
                k8s_status(404, "NotFound", f'uibuttons.tilt.dev "{name}" not found', name), 404
            )
        meta = body.get("metadata") if isinstance(body, dict) else None
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or not isinstance(status, dict):
            return json_response(
                k8s_status(400, "BadRequest", "the body must be a UIButton with metadata"), 400
            )
        if meta.get("name", name) != name:
            message = (
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
            return json_response(k8s_status(400, "BadRequest", message), 400)
        clicked = status.get("lastClickedAt")
        if clicked is not None and not (isinstance(clicked, str) and MICRO_RE.match(clicked)):
            message = (
                f'parsing time "{clicked}" as "2006-01-02T15:04:05.000000Z07:00": '
                "cannot parse as a MicroTime with 6 fractional digits"
            )
            return json_response(k8s_status(400, "BadRequest", message), 400)
        inputs = [i for i in status.get("inputs") or () if isinstance(i, dict)]
        async with self._lock:
            current = self.model.buttons.get(name)
            if current is None:
                return json_response(
                    k8s_status(404, "NotFound", f'uibuttons.tilt.dev "{name}" not found', name),
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
                return json_response(k8s_status(409, "Conflict", message, name), 409)
            updated = bumped(self.model, current)
            updated["status"] = copy.deepcopy(status)
            await self._broadcast(self.model.apply({"uiButtons": [updated]}))
        if self._takes_click(name, clicked):
            self._spawn(lambda: self._after_click(name, inputs))
        return json_response(dumps(updated) + "\n", 200)

    def _takes_click(self, name: str, clicked: object) -> bool:
        """Tilt's ToggleButton reconciler acts on a click only if its ``lastClickedAt`` is
        after the moment (Tilt's ``time.Now()``) it processed the previous one; the PUT
        itself succeeds either way. Other buttons run on every click."""
        if not (name.startswith("toggle-") and name.endswith("-disable")):
            return True
        if not isinstance(clicked, str):
            return False
        when = datetime.strptime(clicked, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        last = self._toggle_processed.get(name)
        if last is not None and when <= last:
            return False
        self._toggle_processed[name] = self._clock()
        return True

    # ---------------------------------------------------------------- websocket

    async def _websocket(self, ws: WebSocket) -> None:
        request = ws.request
        if request.path != "/ws/view":
            await ws.reject(404, "404 page not found\n")
            self._record(request, 404)
            return
        csrf_ok = not self.require_csrf or csrf_of(request) == self.csrf
        if not origin_ok(request.headers) or not csrf_ok:
            await ws.reject(403, WS_FORBIDDEN_BODY)
            self._record(request, 403)
            return
        hung = self.hung
        client = _Client(ws=ws, silent=self.silent or hung)
        await ws.accept()
        self._record(request, 101)
        self._conn_delta(+1)
        self._sockets.add(client)
        try:
            if not client.silent:
                async with self._lock:
                    view = self.model.complete_view()
                    client.checkpoint = self.model.logs.checkpoint
                    self._clients.add(client)
                    await self._send_to(client, dumps(view) + "\n")
            # Tilt ignores what clients send; a hung Tilt does not even read it.
            await ws.serve(read=not hung)
        finally:
            self._clients.discard(client)
            self._sockets.discard(client)
            self._conn_delta(-1)
