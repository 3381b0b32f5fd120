"""Every error the bridge raises on purpose.

    BridgeError
    ├── ConfigError            bad option or environment; the process cannot start
    ├── FrameError             a /ws/view frame we cannot decode (the frame is skipped)
    ├── TiltError              talking to Tilt failed
    │   ├── TiltUnreachable    nothing answers at host:port (Tilt down or restarting)
    │   ├── TiltAuthError      403: wrong or missing token, or a stale csrf
    │   ├── TiltConflict       409 on a UIButton update (stale resourceVersion)
    │   └── TiltRequestError   any other non-2xx answer
    └── ToolError              a tool call that cannot be answered as asked
        └── UnknownResource    a resource/button name Tilt does not have (with close matches)

Foreign exceptions (websockets, h11, OSError) are translated at one boundary each:
``bridge.tilt.client`` for HTTP and ``bridge.tilt.stream`` for the websocket.
Messages say what happened, the value involved, and what to do next. They never
contain Tilt's token.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """An option or environment variable is wrong; the message says which and how to fix it."""


class FrameError(BridgeError, ValueError):
    """A /ws/view frame could not be decoded."""


class TiltError(BridgeError):
    """Talking to Tilt failed."""


class TiltUnreachable(TiltError):
    """Nothing answers at Tilt's address: it is not running, or restarting."""


class TiltAuthError(TiltError):
    """Tilt answered 403: the token is wrong or missing, or the csrf is stale."""


class TiltConflict(TiltError):
    """Tilt answered 409: the object changed since we read it."""


class TiltRequestError(TiltError):
    """Tilt answered with an unexpected status."""

    def __init__(self, message: str, *, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ToolError(BridgeError):
    """A tool call that cannot be answered as asked; the message is written for the model."""


class UnknownResource(ToolError):
    """A name Tilt does not know; carries close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known_list = sorted(known)
        self.kind = kind
        self.name = name
        # difflib is quadratic: a huge name gets no suggestions (and is quoted cut)
        self.matches = close_matches(name, known_list) if len(name) <= 256 else []
        if self.matches:
            hint = "did you mean " + ", ".join(repr(m) for m in self.matches) + "?"
        elif known_list:
            shown = ", ".join(known_list[:20]) + (" …" if len(known_list) > 20 else "")
            hint = f"known {kind}s: {shown}"
        else:
            hint = f"Tilt reports no {kind}s yet (is the Tiltfile loaded?)"
        super().__init__(f"no {kind} named {quoted(name)}; {hint}")


def quoted(value: str, limit: int = 100, *, unit: str = "chars") -> str:
    """``repr`` of an agent's value for a message, cut to ``limit`` characters with its
    length. The one quoting rule: :func:`bridge.core.inputs.quote` and
    :func:`bridge.mcp.uris.quote_value` (``unit="characters"``) call it."""
    if len(value) > limit:
        return repr(value[:limit]) + f"… ({len(value)} {unit})"
    return repr(value)


def close_matches(name: str, known: Iterable[str], limit: int = 3) -> list[str]:
    """Names close to ``name``: difflib ratio first, then case-insensitive substrings."""
    known_list = list(known)
    matches = difflib.get_close_matches(name, known_list, n=limit, cutoff=0.6)
    lowered = name.lower()
    for candidate in known_list:
        if len(matches) >= limit:
            break
        if candidate not in matches and lowered and lowered in candidate.lower():
            matches.append(candidate)
    return matches
