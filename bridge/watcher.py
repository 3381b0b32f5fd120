"""The background watcher: owns the ``/ws/view`` connection and feeds the store.

It never dies. Each attempt is: fetch a fresh csrf (new per Tilt process) →
open the websocket → apply frames. Whatever ends an attempt is logged once
(repeats of the same failure go to debug), reflected in the store's connection
state, and followed by a delay from :mod:`bridge.core.backoff`:

* a connection that was live and dropped (Tilt restarting, 1006) → retry after
  ``after_live`` (fast), then back off;
* 403 on the websocket (stale csrf) → refetch the csrf and retry at once, once;
* 403 on the csrf request (wrong token) → state ``auth_failed``, re-read the
  token file, back off to the cap (no retry storm);
* anything else → jittered, capped exponential backoff.

Any other exception in one connection (a decoder or reducer bug) is logged once and
the watcher goes on. The frame generator is always closed (``contextlib.aclosing``), so
the websocket is shut even when the loop body raises.

Alongside the connection loop the watcher ends pending triggers whose deadline passed
(:meth:`Store.expire_triggers`), so a trigger Tilt never showed stops reading as
triggered even when no frame arrives.

Cancellation (shutdown) always propagates.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace
from typing import Final

import anyio
from anyio.abc import TaskStatus

from bridge.core.backoff import BackoffPolicy, delays
from bridge.errors import FrameError, TiltAuthError, TiltError
from bridge.lifecycle import StartGate
from bridge.log import get_logger
from bridge.store import Store
from bridge.tilt.stream import StreamClosed, ViewSource
from bridge.tilt.view import View, decode_view

log = get_logger("bridge.watcher")

THREAD_DECODE_BYTES: Final = 512 * 1024
"""Frames larger than this are decoded in a worker thread so MCP requests keep flowing."""


class Watcher:
    def __init__(
        self,
        store: Store,
        source: ViewSource,
        *,
        url: str,
        policy: BackoffPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        after_big_frame: Callable[[], None] | None = None,
        gate: StartGate | None = None,
    ) -> None:
        self.store = store
        self.gate = gate
        self.after_big_frame = after_big_frame
        self.source = source
        self.url = url
        self.policy = policy or BackoffPolicy()
        self._rng = rng
        self._clock = clock
        self._last_error: str | None = None
        self.attempts_total = 0

    # ------------------------------------------------------------------ state

    def _set(self, state: str, *, error: str | None = None, **extra: float) -> None:
        info = self.store.state.connection
        fields: dict[str, object] = {"state": state, "url": self.url, **extra}
        if state != info.state:
            fields["since"] = self._clock()
        if error is not None:
            fields["last_error"] = error
        elif state == "connected":
            fields["last_error"] = None  # a good connection answers the last failure
        self.store.set_connection(replace(info, **fields))  # type: ignore[arg-type]

    def _report(self, event: str, message: str, **kw: object) -> None:
        """Log a failure once; identical repeats go to debug."""
        if message != self._last_error:
            log.warning(event, error=message, url=self.url, **kw)
            self._last_error = message
        else:
            log.debug(event, error=message, url=self.url, **kw)

    # ------------------------------------------------------------------ loop

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run forever. ``task_status.started()`` fires before the first attempt, which
        waits for the start gate (if any)."""
        self._set("connecting")
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._expire_triggers)
            task_status.started()
            if self.gate is not None:
                await self.gate.wait()
            await self._connect_forever()

    async def _expire_triggers(self) -> None:
        """End pending triggers at their deadline, with or without frames arriving."""
        store = self.store
        while True:
            delay = store.trigger_deadline_in()
            version = store.version
            if delay is None:
                await store.wait_changed(version)
                continue
            with anyio.move_on_after(delay):
                await store.wait_changed(version)
            store.expire_triggers()

    async def _connect_forever(self) -> None:
        backoff = delays(self.policy, self._rng)
        retry_now = False
        while True:
            live = False
            stage = "csrf"
            self.attempts_total += 1
            try:
                csrf = await self.source.fetch_csrf()
                stage = "websocket"
                self.store.new_connection()
                async with aclosing(self.source.open(csrf)) as frames:
                    async for raw in frames:
                        await self._handle(raw)
                        if not live:
                            # connected once the first (complete) view is in the cache, so
                            # no reader sees "connected" next to the previous state
                            live = True
                            info = self.store.state.connection
                            self._set(
                                "connected",
                                attempts=0,
                                connections=info.connections + 1,
                                frames=1,
                                tilt_clock_offset_s=float(
                                    getattr(self.source, "clock_offset_s", 0.0)
                                ),
                            )
                            log.info("tilt.stream.connected", url=self.url)
                            self._last_error = None
                # the async for ended: Tilt closed cleanly; handled like any drop
                raise StreamClosed(f"Tilt closed the connection to {self.url}", 1000)  # noqa: TRY301
            except TiltAuthError as exc:
                message = str(exc)
                if stage == "websocket" and not retry_now:
                    # stale csrf: Tilt restarted between our two requests. Refetch now.
                    self._report("tilt.stream.csrf_rejected", message)
                    retry_now = True
                    self._set("connecting", error=message)
                    continue
                self.source.reload_token()
                self._report("tilt.auth.failed", message)
                self._set("auth_failed", error=message, attempts=self._attempts() + 1)
            except StreamClosed as exc:
                self._report("tilt.stream.closed", str(exc), code=exc.code)
                self._set("disconnected", error=str(exc), attempts=self._attempts() + 1)
            except TiltError as exc:
                self._report("tilt.stream.unreachable", str(exc))
                self._set("disconnected", error=str(exc), attempts=self._attempts() + 1)
            except Exception as exc:  # the watcher never dies; say what happened
                message = f"unexpected {exc.__class__.__name__}: {exc}"
                if message != self._last_error:
                    log.exception("tilt.stream.unexpected_error", error=message, url=self.url)
                else:
                    log.debug("tilt.stream.unexpected_error", error=message, url=self.url)
                self._last_error = message
                self._set("disconnected", error=message, attempts=self._attempts() + 1)
            retry_now = False
            if live:
                backoff = delays(self.policy, self._rng)
                delay = self.policy.after_live
            else:
                delay = next(backoff)
            log.debug("tilt.stream.retry", delay_s=round(delay, 3))
            await anyio.sleep(delay)

    def _attempts(self) -> int:
        return self.store.state.connection.attempts

    async def _handle(self, raw: str) -> None:
        try:
            view: View
            big = len(raw) > THREAD_DECODE_BYTES
            if big:
                view = await anyio.to_thread.run_sync(decode_view, raw)
            else:
                view = decode_view(raw)
        except FrameError as exc:
            log.warning("tilt.frame.skipped", reason=str(exc), size_bytes=len(raw))
            self.store.note_bad_frame()
            return
        self.store.apply_frame(view)
        if (big or view.is_complete) and self.after_big_frame is not None:
            del raw, view
            self.after_big_frame()


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
