"""How the bridge stops (:class:`Shutdown`), when its watchers first connect
(:class:`StartGate`), when start-up is over for the collector (:func:`settle_heap`), and
how it gives memory back (:func:`release_memory`).

Imported by the app, the watcher and the transports, which sit below it: it imports only
``bridge.log``."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections.abc import Callable

import anyio

from bridge.log import get_logger

log = get_logger("bridge.app")


def _hard_exit() -> None:  # pragma: no cover - runs only when cleanup hangs
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class Shutdown:
    """What SIGTERM/SIGINT do. By default: cancel everything. A transport that can stop
    gracefully (uvicorn: finish responses, run the lifespan shutdown) registers
    :attr:`graceful` instead and returns by itself.

    Either way a daemon timer ends the process if cleanup has not finished within
    ``grace_s``: the stdio transport reads stdin in a worker thread that cancellation
    cannot interrupt, and PID 1 in a container must stop."""

    def __init__(self, scope: anyio.CancelScope, grace_s: float) -> None:
        self.scope = scope
        self.grace_s = grace_s
        self.graceful: Callable[[], None] | None = None

    def trigger(self) -> None:
        timer = threading.Timer(self.grace_s, _hard_exit)
        timer.daemon = True
        timer.start()
        if self.graceful is not None:
            self.graceful()
        else:
            self.scope.cancel()

    async def on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("bridge.stopping", signal=signal.Signals(signum).name)
                self.trigger()
                return


class StartGate:
    """When the watchers make their first connection to Tilt.

    Under stdio the client's handshake comes first: a first connection imports h11 and
    makes requests, work that would otherwise run on the event loop between spawn and
    the ``initialize`` answer, which needs none of it. The gate opens when the client
    has the answer
    (``notifications/initialized``), on its first request other than ``initialize``
    (the 2026-07-28 era has no handshake), or ``cap_s`` after the transport started
    reading (:meth:`arm`), whichever comes first; ``cap_s=0`` (the HTTP transport) is
    open from the start. :attr:`on_open` runs just before it opens: start-up is over."""

    def __init__(self, cap_s: float) -> None:
        self.cap_s = cap_s
        self.on_open: Callable[[], None] | None = None
        """Run once, just before the gate opens (so before any watcher moves on)."""
        self._event = anyio.Event()
        self._armed = anyio.Event()
        if cap_s <= 0:
            self._event.set()

    @property
    def is_open(self) -> bool:
        return self._event.is_set()

    def open(self) -> None:
        if self._event.is_set():
            return
        hook, self.on_open = self.on_open, None
        if hook is not None:
            hook()
        self._event.set()

    def arm(self) -> None:
        """The transport is reading: from now on, wait at most ``cap_s``."""
        self._armed.set()

    async def wait(self) -> None:
        """Until the gate is open (at most ``cap_s`` after :meth:`arm`; then it opens)."""
        if self._event.is_set():
            return
        async with anyio.create_task_group() as tg:

            async def deadline() -> None:
                await self._armed.wait()
                await anyio.sleep(self.cap_s)
                self.open()

            tg.start_soon(deadline)
            await self._event.wait()
            tg.cancel_scope.cancel()


def settle_heap() -> tuple[int, int]:
    """Start-up is over (the server is built and the client has its handshake): collect
    the garbage start-up left, move every survivor (modules, the SDK's models, the
    server) out of the collector's sight for good, and turn the collector back on, which
    :func:`bridge.cli.main` turned off. Later full collections then scan only what the
    bridge made since (log lines, views), not the ~1M start-up objects.

    Returns (unreachable objects collected, objects frozen)."""
    collected = gc.collect()
    gc.freeze()
    gc.enable()
    return collected, gc.get_freeze_count()


def settle_and_log() -> None:
    """:func:`settle_heap`, logged (what start-up left, what it froze)."""
    collected, frozen = settle_heap()
    log.info("bridge.settled", collected=collected, frozen=frozen)


def release_memory() -> None:
    """After a big frame: collect its garbage and hand freed heap back to the OS.

    glibc keeps freed memory in its arenas (one per thread; big frames are decoded in a
    worker thread), so without ``malloc_trim`` the RSS stays at the peak. No-op on musl."""
    import ctypes  # only here: a big frame is rare, and ctypes costs ~2 ms to import

    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
