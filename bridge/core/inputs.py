"""Caps on what an agent may send, and how a bad value is quoted back.

An agent's input is untrusted: any argument may be huge, malformed or hostile. Every
name, label, pattern and time an MCP handler accepts is checked here first, so no
later step (a dictionary lookup, ``difflib`` close matches, a regex compile) ever sees
more than a few hundred characters. Errors quote at most :data:`QUOTE_CHARS` of the
value, name the argument and say what is allowed. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from bridge.errors import ToolError, quoted

QUOTE_CHARS: Final = 100
MAX_NAME: Final = 256
"""Resource and button names (Tilt's are Kubernetes-like names, far shorter)."""
MAX_LABEL: Final = 320
"""A label key: a 253-character prefix, ``/`` and a 63-character name."""
MAX_GREP: Final = 1000
MAX_SINCE: Final = 64
MAX_ENUM: Final = 32
"""Enumerated words (level, source, status, condition)."""


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of the value, cut to about ``limit`` characters with its full length."""
    if isinstance(value, str) and len(value) > limit:
        return quoted(value, limit)
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_text(argument: str, value: str, limit: int, what: str) -> str:
    """``value`` unchanged if it is at most ``limit`` characters, else a ToolError."""
    if len(value) > limit:
        raise ToolError(
            f"{argument}={quote(value)} is too long: {what} is at most {limit} characters"
        )
    return value


def check_name(value: str, argument: str = "name") -> str:
    return check_text(argument, value, MAX_NAME, "a resource name")


def check_enum(argument: str, value: str, allowed: Iterable[str]) -> str:
    """A word from ``allowed`` (compared as given); the error lists the choices."""
    choices = list(allowed)
    if value not in choices:
        raise ToolError(f"{argument} must be one of {', '.join(choices)}; got {quote(value)}")
    return value
