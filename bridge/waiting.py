"""Waiting on resources without polling: conditions evaluated on each store change.

:func:`evaluate` is pure: given a resource now and the baseline taken when the
wait began, it says ``done``, ``failed`` or keep waiting. :func:`wait_for`
re-evaluates only when the store's version moves (``Store.wait_changed``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import anyio

from bridge.core.logbuffer import parse_time_us
from bridge.errors import ToolError, UnknownResource
from bridge.store import Store
from bridge.tilt.view import Resource

CONDITIONS: Final = ("ready", "up_to_date", "build_finished")


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a resource looked like when the wait began."""

    last_build_start: str | None
    building: bool
    not_before_us: int = 0  # a build counts as new only if it started at/after this time

    @classmethod
    def of(cls, res: Resource | None) -> Baseline:
        if res is None:
            return cls(None, False)
        start = res.build_history[0].start_time if res.build_history else None
        return cls(start, res.current_build is not None or res.update_status == "in_progress")

    @classmethod
    def before_trigger(cls, res: Resource, now_us: int, skew_us: int = 1_000_000) -> Baseline:
        """For a build we are about to trigger: neither the last build nor one running now
        may count, nor any build that started before the trigger (our view of Tilt lags a
        frame or two; ``skew_us`` allows for Tilt's clock being a little behind ours)."""
        if res.current_build is not None and res.current_build.start_time:
            start: str | None = res.current_build.start_time
        else:
            start = res.build_history[0].start_time if res.build_history else None
        return cls(start, False, now_us - skew_us)


@dataclass(frozen=True, slots=True)
class Outcome:
    resource: str
    ok: bool
    reason: str


def _build_busy(res: Resource) -> bool:
    return (
        res.current_build is not None
        or res.queued
        or res.update_status in ("pending", "in_progress")
    )


def _cond_true(res: Resource, type_: str) -> bool | None:
    cond = res.condition(type_)
    if cond is None:
        return None
    return cond.status == "True"


def evaluate(res: Resource | None, name: str, condition: str, base: Baseline) -> Outcome | None:
    """``Outcome`` when the wait for ``name`` is over (either way), ``None`` to keep waiting."""
    if res is None:
        return Outcome(name, False, "the resource no longer exists (removed from the Tiltfile?)")
    if res.disabled:
        return Outcome(name, False, "the resource is disabled; call enable first")
    newest = res.build_history[0] if res.build_history else None
    new_build = (
        newest is not None
        and newest.start_time != base.last_build_start
        and (not base.not_before_us or parse_time_us(newest.start_time or "") >= base.not_before_us)
    )
    last_error = res.build_history[0].error if res.build_history else None
    if condition == "build_finished":
        finished = (new_build or base.building) and not _build_busy(res)
        if not finished:
            return None
        if last_error:
            return Outcome(name, False, "build failed: " + last_error)
        return Outcome(name, True, "build finished ok")
    busy = _build_busy(res)
    if res.update_status == "error" and not busy:
        return Outcome(name, False, "build failed: " + (last_error or "update error"))
    if res.runtime_status == "error" and not busy:
        return Outcome(name, False, "runtime error (the process or pod crashed)")
    if condition == "up_to_date":
        up = _cond_true(res, "UpToDate")
        if up is None:
            up = res.update_status in ("ok", "not_applicable")
        return Outcome(name, True, "up to date") if up and not busy else None
    if condition == "ready":
        ready = _cond_true(res, "Ready")
        if ready is None:
            ready = res.runtime_status in ("ok", "not_applicable") and res.update_status in (
                "ok",
                "not_applicable",
            )
        return Outcome(name, True, "ready") if ready and not busy else None
    raise ToolError(f"condition must be one of {', '.join(CONDITIONS)}; got {condition!r}")


@dataclass(frozen=True, slots=True)
class WaitResult:
    outcomes: tuple[Outcome, ...]
    pending: tuple[str, ...]  # still waiting when the timeout hit
    timed_out: bool
    waited_s: float


async def wait_for(
    store: Store,
    names: Sequence[str],
    condition: str,
    timeout_s: float,
    *,
    baselines: dict[str, Baseline] | None = None,
    progress: Callable[[int, int, str], Awaitable[None]] | None = None,
) -> WaitResult:
    """Wait until every resource meets ``condition``, one fails, or the timeout passes."""
    if condition not in CONDITIONS:
        raise ToolError(f"condition must be one of {', '.join(CONDITIONS)}; got {condition!r}")
    if not names:
        raise ToolError("name at least one resource to wait for")
    state = store.state
    for name in names:
        if name not in state.resources:
            raise UnknownResource("resource", name, state.resources.keys())
    base = baselines or {n: Baseline.of(state.resources.get(n)) for n in names}
    done: dict[str, Outcome] = {}
    start = anyio.current_time()
    timed_out = True
    with anyio.move_on_after(timeout_s):
        version = -1
        while True:
            current = store.state
            for name in names:
                if name in done:
                    continue
                outcome = evaluate(current.resources.get(name), name, condition, base[name])
                if outcome is not None:
                    done[name] = outcome
            failed = any(not o.ok for o in done.values())
            if len(done) == len(names) or failed:
                timed_out = False
                break
            if progress is not None and current.version != version:
                waiting_on = [n for n in names if n not in done]
                await progress(len(done), len(names), "waiting for " + ", ".join(waiting_on))
            version = current.version
            await store.wait_changed(version)
    pending = tuple(n for n in names if n not in done)
    return WaitResult(
        outcomes=tuple(done[n] for n in names if n in done),
        pending=pending if timed_out or any(not o.ok for o in done.values()) else (),
        timed_out=timed_out,
        waited_s=round(anyio.current_time() - start, 3),
    )
