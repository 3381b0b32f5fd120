"""The bridge's own resource URI shapes, checked before anything is stored or read. Pure.

::

    tilt://status
    tilt://resources
    tilt://resources/{name}         {name} percent-encoded (RFC 3986), decoded exactly once
    tilt://resources/{name}/logs
    tilt://instances                every Tilt the bridge serves (as list_instances)
    tilt://instances/{port}/status, …/resources, …/resources/{name}, …/resources/{name}/logs

The un-qualified forms address the default instance; ``tilt://instances/{port}/…`` the
Tilt on that web port. The port is the instance's name in URIs: it is what Tilt names
its context by (``tilt-<port>``), it stays put while a Tiltfile is edited or its folder
renamed, and unlike a folder name it is never ambiguous (two worktrees of different repos
can both be called ``app``). Ports are written without a leading zero, so each resource
has exactly one URI (subscriptions match URIs as strings).

Tilt resource names are path segments (Kubernetes' ``ValidatePathSegmentName``): they never
contain ``/`` or ``%``, so a name that decodes to either (``web%2Flogs``) can never exist and
is refused. Any other well-formed name is accepted even if Tilt has no such resource yet: a
subscriber may be waiting for it to appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import unquote

from bridge.errors import BridgeError, quoted

MAX_URI_CHARS: Final = 2048
"""Longer URIs are refused before anything else looks at them."""

STATUS: Final = "tilt://status"
RESOURCES: Final = "tilt://resources"
_PREFIX: Final = "tilt://resources/"
_LOGS: Final = "/logs"
INSTANCES: Final = "tilt://instances"
_QUALIFIED: Final = "tilt://instances/"
SHAPES: Final = (
    "tilt://status, tilt://resources, tilt://resources/{name} or tilt://resources/{name}/logs, "
    "each also as tilt://instances/{port}/… for the Tilt on that port, and tilt://instances"
)
PORT: Final = re.compile(r"[1-9][0-9]{0,4}")
QUOTE_CHARS: Final = 100

# RFC 3986 pchar: unreserved / pct-encoded / sub-delims / ":" / "@" ("/" is checked apart)
_PCHAR: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+")

Kind = Literal["status", "resources", "resource", "logs", "instances"]


class UriRefused(BridgeError, ValueError):
    """A resource URI that is not one of the bridge's shapes (message written for the model)."""


@dataclass(frozen=True, slots=True)
class BridgeUri:
    kind: Kind
    name: str | None = None
    """The decoded Tilt resource name (``resource`` and ``logs`` only)."""
    port: int | None = None
    """The instance's web port (``tilt://instances/{port}/…``); None: the default."""


def quote_value(value: str, limit: int = QUOTE_CHARS) -> str:
    """``value`` for an error message: its repr, cut to ``limit`` characters, with its length."""
    return quoted(value, limit, unit="characters")


def parse(uri: str) -> BridgeUri:
    """What ``uri`` names; ``UriRefused`` (with the reason and the shapes) if it is not ours."""
    if len(uri) > MAX_URI_CHARS:
        raise UriRefused(
            f"resource URI {quote_value(uri)} is over the {MAX_URI_CHARS}-character limit; "
            f"this server's URIs are {SHAPES}."
        )
    if uri == INSTANCES:
        return BridgeUri("instances")
    if uri.startswith(_QUALIFIED):
        port_text, slash, rest = uri[len(_QUALIFIED) :].partition("/")
        if not PORT.fullmatch(port_text) or int(port_text) > 65535:
            raise UriRefused(
                f"resource URI {quote_value(uri)}: {quote_value(port_text, 20)} is not a web "
                "port (1-65535, no leading zero); list_instances shows the ports."
            )
        inner = _unqualified("tilt://" + rest if slash else "", uri)
        return BridgeUri(inner.kind, inner.name, int(port_text))
    return _unqualified(uri, uri)


def _unqualified(uri: str, whole: str) -> BridgeUri:
    if uri == STATUS:
        return BridgeUri("status")
    if uri == RESOURCES:
        return BridgeUri("resources")
    if not uri.startswith(_PREFIX):
        raise UriRefused(
            f"unknown resource URI {quote_value(whole)}; this server's URIs are {SHAPES}."
        )
    rest = uri[len(_PREFIX) :]
    kind: Kind = "resource"
    if rest.endswith(_LOGS):
        kind, rest = "logs", rest[: -len(_LOGS)]
    return BridgeUri(kind, _decode_name(rest, whole))


def qualify(uri: str, port: int) -> str:
    """``tilt://status`` → ``tilt://instances/{port}/status`` (and so on)."""
    return f"{_QUALIFIED}{port}/{uri.removeprefix('tilt://')}"


def _decode_name(encoded: str, uri: str) -> str:
    if not encoded:
        raise UriRefused(
            f"resource URI {quote_value(uri)} names no resource; use {SHAPES} "
            "(call list_resources for the names)."
        )
    if "/" in encoded or not _PCHAR.fullmatch(encoded):
        raise UriRefused(
            f"resource URI {quote_value(uri)} is not one of this server's URIs ({SHAPES}); "
            "percent-encode the name (a space is %20, '#' is %23, '?' is %3F)."
        )
    try:
        name = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise UriRefused(
            f"resource URI {quote_value(uri)}: the name's percent-escapes are not UTF-8."
        ) from None
    if "/" in name or "%" in name:
        raise UriRefused(
            f"resource URI {quote_value(uri)} names {quote_value(name)}, which no Tilt resource "
            "can be called (Tilt names never contain '/' or '%'); call list_resources for "
            "the names."
        )
    return name
