"""A fake Tilt for tests and ``--demo``: a real HTTP + websocket server on one port.

Shipped with the package like ``structlog.testing`` or ``httpx.MockTransport``.
Layers, bottom to top, one module each:

* :mod:`~bridge.testing.recordings`: real ``/ws/view`` traffic from a real Tilt,
  bundled gzipped in ``bridge/data/recordings``; :func:`load_recording` reads one
  into frozen :class:`Recording` / :class:`Connection` / :class:`Frame` /
  :class:`Marker` values.
* The model, pure (no I/O, the clock passed in): :class:`LogStore`
  (:mod:`~bridge.testing.logstore`) is Tilt's log store, segments plus spans, a
  checkpoint is ``offset + index``, truncated with Tilt's own algorithm past
  ``max_bytes``; :class:`TiltModel` (:mod:`~bridge.testing.model`) holds the objects
  by name and merges deltas; :mod:`~bridge.testing.reactions` turns write calls (a
  build, disabling a resource, a button's command) into the next delta, in the shapes
  the recordings show.
* The server: :mod:`~bridge.testing.wire` owns the sockets (an anyio listener, h11 and
  websockets' sans-I/O protocol), :mod:`~bridge.testing.api` writes Tilt's HTTP
  answers, and :class:`FakeTilt` (:mod:`~bridge.testing.server`) is Tilt's HUD server.

Nothing is printed or logged.
"""

from bridge.testing.logstore import MAX_LOG_BYTES, LogStore
from bridge.testing.model import JSONDict, JSONObject, TiltModel, micro_time
from bridge.testing.recordings import (
    DEFAULT_INITIAL,
    Connection,
    Frame,
    Marker,
    Recording,
    load_api_view,
    load_recording,
    recording_names,
)
from bridge.testing.server import DEFAULT_TOKEN, FakeTilt, InitialState, RecordedRequest

__all__ = [
    "DEFAULT_INITIAL",
    "DEFAULT_TOKEN",
    "MAX_LOG_BYTES",
    "Connection",
    "FakeTilt",
    "Frame",
    "InitialState",
    "JSONDict",
    "JSONObject",
    "LogStore",
    "Marker",
    "RecordedRequest",
    "Recording",
    "TiltModel",
    "load_api_view",
    "load_recording",
    "micro_time",
    "recording_names",
]
