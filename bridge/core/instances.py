"""Which Tilts are running, and which one a bridge serves by default. Pure: no I/O.

Tilt writes ``$TILT_DEV_DIR/config`` (default ``~/.tilt-dev/config``): a kubeconfig
with one context per running ``tilt up``, named after its web port: ``tilt-default``
for 10350, ``tilt-<port>`` otherwise (``pkg/model/api.go``). The context's cluster
``server`` is Tilt's internal API server on a random port, not the web port; the file
also holds that server's bearer tokens, so nothing here ever quotes the file.

Facts about that file, checked on Tilt v0.37.6 (the source, and the binary):

* client-go rewrites it **in place** (truncate, then write; the inode stays), so a
  reader can catch it empty or cut short. :func:`parse_config` flags such a read as
  ``truncated``; the caller reads again before believing it.
* A Tilt removes its context when it exits cleanly (SIGTERM, SIGINT, ``tilt down``);
  after ``kill -9`` or a crash the context stays. A context means "maybe running".
* With no Tilt left the file is ``clusters: null`` / ``contexts: null`` / ``users: null``.

The parser reads only what it needs (the context names) from the block YAML that
client-go prints (keys sorted, two-space indent, unindented sequences, no anchors),
and tolerates other indentation, quotes and comments. No YAML library at run time.

Selection (:func:`select`): an explicit ``--port``/``TILT_PORT`` wins; else the Tilt
whose Tiltfile folder contains the workspace (the deepest such folder); else the one
Tilt whose folder lies inside the workspace; else the lone Tilt; else Tilt's default
port 10350 when it runs. Paths must be absolute and symlink-resolved by the caller:
Tilt reports its Tiltfile resolved (``ResolveFilename`` uses ``ospath.RealAbs``), so
``/tmp/x`` on macOS is ``/private/tmp/x``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from bridge.errors import ToolError, UnknownResource

DEFAULT_WEB_PORT: Final = 10350
"""Tilt's default ``--port``; its context is ``tilt-default``."""

MAX_CONFIG_BYTES: Final = 1024 * 1024
"""A bigger config is not Tilt's (each context costs ~3.4 KB: 300 Tilts fit)."""

MAX_INSTANCES: Final = 64
"""Contexts beyond this many are ignored (and said so)."""

MAX_QUOTE: Final = 100
"""Characters of a caller's bad input quoted back in an error."""

_CONTEXT_RE: Final = re.compile(r"tilt-(?:default|[1-9][0-9]{0,4})")
_TOP_KEY_RE: Final = re.compile(r"^([A-Za-z0-9_-]+)\s*:(.*)$")
_NAME_RE: Final = re.compile(r"""^(\s*)(-\s+)?name\s*:\s*(.*?)\s*$""")
_ITEM_RE: Final = re.compile(r"^(\s*)-(\s+)\S")


# --------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class TiltConfig:
    """What one read of the config says: the web ports of the Tilts it lists.

    ``problem`` says in words why the set is empty or partial (``None``: all well).
    ``truncated`` marks a read that looks cut short by Tilt's in-place rewrite:
    read again before trusting it."""

    ports: frozenset[int] = frozenset()
    problem: str | None = None
    truncated: bool = False


def port_of_context(name: str) -> int | None:
    """The web port a Tilt context name stands for; ``None`` for other contexts."""
    if not _CONTEXT_RE.fullmatch(name):
        return None
    if name == "tilt-default":
        return DEFAULT_WEB_PORT
    port = int(name.removeprefix("tilt-"))
    return port if port < 65536 else None


def context_name(port: int) -> str:
    """Tilt's name for the instance on web port ``port`` (``DefaultAPIServerName``)."""
    return "tilt-default" if port == DEFAULT_WEB_PORT else f"tilt-{port}"


def parse_config(data: bytes | str) -> TiltConfig:
    """The running Tilts a ``$TILT_DEV_DIR/config`` lists. Never raises."""
    if len(data) > MAX_CONFIG_BYTES:
        return TiltConfig(problem=f"the file is {len(data)} bytes, over {MAX_CONFIG_BYTES}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return TiltConfig(problem="the file is not UTF-8 text")
    else:
        text = data
    if not text.strip():
        return TiltConfig(problem="the file is empty", truncated=True)
    lines = text.splitlines()
    if not text.endswith("\n"):
        lines.pop()  # cut short mid-line: `tilt-100` may read `tilt-10`
    names, problem, complete = _context_names(lines)
    if problem is not None:
        return TiltConfig(problem=problem, truncated=not text.endswith("\n"))
    ports = sorted({p for p in map(port_of_context, names) if p is not None})
    note = None
    if len(ports) > MAX_INSTANCES:
        note = f"{len(ports)} Tilt contexts; only the first {MAX_INSTANCES} ports are used"
        ports = ports[:MAX_INSTANCES]
    truncated = not complete or not text.endswith("\n")
    if truncated and note is None:
        note = "the file looks cut short (Tilt may be rewriting it)"
    return TiltConfig(frozenset(ports), note, truncated)


def _context_names(lines: Sequence[str]) -> tuple[list[str], str | None, bool]:
    """The names in the top-level ``contexts`` list, a problem, and whether the file
    goes on past ``kind`` (client-go sorts keys: ``contexts`` < ``current-context`` <
    ``kind``, so a read cut short inside the list misses ``kind``)."""
    top: dict[str, int] = {}
    for i, line in enumerate(lines):
        m = _TOP_KEY_RE.match(line)
        if m and m.group(1) not in top:
            top[m.group(1)] = i
    if "contexts" not in top:
        if lines and lines[0].lstrip().startswith(("{", "[")):
            return [], "the file is JSON or flow YAML, not the block YAML Tilt writes", True
        if "kind" in top or "apiVersion" in top:
            return [], None, "kind" in top
        return [], "the file has no top-level 'contexts' (not a kubeconfig)", True
    start = top["contexts"]
    inline = _strip_comment(_TOP_KEY_RE.match(lines[start]).group(2)).strip()  # type: ignore[union-attr]
    complete = "kind" in top
    if inline in ("null", "~", "[]"):
        return [], None, complete
    if inline:
        return [], "its 'contexts' is not a block list", complete
    names: list[str] = []
    item_indent: int | None = None  # the column of the items' dash
    key_indent = 0  # the column of an item's keys: `- ` or `-   ` past the dash
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace() and not line.startswith("-"):
            break  # the next top-level key
        item = _ITEM_RE.match(line)
        if item and item_indent is None:
            item_indent = len(item.group(1))
            key_indent = item_indent + 1 + len(item.group(2))
        m = _NAME_RE.match(line)
        if m is None or item_indent is None:
            continue
        indent, dash = len(m.group(1)), m.group(2)
        # the item's own `name`: `- name: x` at the dash, or `name: x` under its keys
        if (dash and indent == item_indent) or (not dash and indent == key_indent):
            value = _unquote(_strip_comment(m.group(3)).strip())
            if value:
                names.append(value)
    return names, None, complete


def _strip_comment(value: str) -> str:
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        return value if end < 0 else value[: end + 1]
    cut = value.find(" #")
    return value if cut < 0 else value[:cut]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True, slots=True)
class Candidate:
    """A running Tilt as selection sees it. ``tiltfile`` is its UISession's
    ``status.tiltfileKey`` (the absolute, symlink-resolved path of its Tiltfile, which
    need not be named ``Tiltfile``), ``None`` until its first frames arrive."""

    port: int
    tiltfile: str | None = None

    @property
    def folder(self) -> PurePosixPath | None:
        return PurePosixPath(self.tiltfile).parent if self.tiltfile else None


@dataclass(frozen=True, slots=True)
class Choice:
    """The default instance (``None``: none can be chosen) and why, in words.

    ``settled`` is false while some candidate's Tiltfile is still unknown and could
    change the answer once it is."""

    port: int | None
    reason: str
    settled: bool = True


def select(
    candidates: Iterable[Candidate],
    *,
    explicit_port: int | None = None,
    explicit_source: str = "--port",
    workspaces: Sequence[str] = (),
    workspace_source: str = "the working directory",
) -> Choice:
    """The default instance: see the module docstring for the rule.

    ``workspaces`` are absolute, resolved paths (the MCP roots in the client's order,
    or the bridge's working directory); ``workspace_source`` names them for the reason.
    """
    if explicit_port is not None:
        return Choice(explicit_port, f"{explicit_source} {explicit_port} was given")
    by_port = {c.port: c for c in candidates}
    ordered = [by_port[p] for p in sorted(by_port)]
    unknown = [c.port for c in ordered if c.tiltfile is None]
    settled = not unknown
    pending = f" (the Tiltfile of port {_ports(unknown)} is not known yet)" if unknown else ""
    spaces = [PurePosixPath(w) for w in workspaces if w.startswith("/")]

    # 1. the deepest Tiltfile folder that contains a workspace
    best: tuple[int, PurePosixPath, PurePosixPath] | None = None
    ties: list[int] = []
    for space in spaces:
        for c in ordered:
            folder = c.folder
            if folder is None or not _within(space, folder):
                continue
            if best is None or len(folder.parts) > len(best[1].parts):
                best, ties = (c.port, folder, space), []
            elif folder == best[1] and c.port != best[0] and c.port not in ties:
                ties.append(c.port)
        if best is not None:
            break  # the first root with a match decides
    if best is not None:
        port, folder, space = best
        where = (
            f"the Tiltfile folder {folder} is the workspace"
            if folder == space
            else f"the Tiltfile folder {folder} contains the workspace {space}"
        )
        also = f"; port {_ports(ties)} serves the same folder" if ties else ""
        return Choice(port, where + also + pending, settled)

    # 2. exactly one Tiltfile folder inside a workspace (a monorepo root was opened)
    for space in spaces:
        inside = [c for c in ordered if c.folder is not None and _within(c.folder, space)]
        if len(inside) == 1:
            c = inside[0]
            reason = f"the Tiltfile folder {c.folder} is the only one inside the workspace {space}"
            return Choice(c.port, reason + pending, settled)

    # 3. a lone Tilt, 4. Tilt's default port
    if len(ordered) == 1:
        return Choice(ordered[0].port, "only one Tilt is running")
    if not ordered:
        return Choice(
            DEFAULT_WEB_PORT,
            f"no Tilt is running; waiting for one on Tilt's default port {DEFAULT_WEB_PORT}",
        )
    shown = ", ".join(str(w) for w in spaces) or "(none)"
    if DEFAULT_WEB_PORT in by_port:
        reason = (
            f"{len(ordered)} Tilts are running and no Tiltfile folder contains "
            f"{workspace_source} {shown}; {DEFAULT_WEB_PORT} is Tilt's default port"
        )
        return Choice(DEFAULT_WEB_PORT, reason + pending, settled)
    reason = (
        f"{len(ordered)} Tilts are running (ports {_ports(list(by_port))}) and no Tiltfile "
        f"folder contains {workspace_source} {shown}; pass instance=<port or folder name>"
    )
    return Choice(None, reason + pending, settled)


def _within(path: PurePosixPath, folder: PurePosixPath) -> bool:
    return path == folder or folder in path.parents


def _ports(ports: Sequence[int]) -> str:
    return ", ".join(str(p) for p in sorted(ports))


# --------------------------------------------------------------------------- `instance` argument


class UnknownInstance(UnknownResource):
    """An ``instance`` argument no running Tilt answers to; carries close matches."""

    def __init__(self, value: str, known: Sequence[Candidate]) -> None:
        names = [str(c.port) for c in known] + [c.folder.name for c in known if c.folder]
        super().__init__("instance", quote(value), names)
        if not known:
            message = f"no instance named {quote(value)!r}: no Tilt is running"
        else:
            hint = ", ".join(repr(m) for m in self.matches)
            message = (
                f"no instance named {quote(value)!r}; "
                + (f"did you mean {hint}? " if hint else "")
                + "running: "
                + ", ".join(label(c) for c in known)
                + " (pass a port or a Tiltfile folder name; list_instances shows them)"
            )
        self.args = (message,)


class AmbiguousInstance(ToolError):
    """An ``instance`` argument several running Tilts answer to."""


def quote(value: str, limit: int = MAX_QUOTE) -> str:
    """At most ``limit`` characters of a caller's input, for an error message."""
    return value if len(value) <= limit else value[:limit] + "…"


def label(candidate: Candidate) -> str:
    """How an instance is named to the model: ``10351 (api)``."""
    folder = candidate.folder
    return f"{candidate.port} ({folder.name or folder})" if folder else str(candidate.port)


def match_instance(value: str, candidates: Iterable[Candidate]) -> int:
    """The port an ``instance`` argument names: a web port (``10351``), a context name
    (``tilt-10351``, ``tilt-default``), a Tiltfile folder's name (``api``), or the
    folder's or the Tiltfile's absolute path. Raises :class:`UnknownInstance` with close
    matches, or :class:`AmbiguousInstance` when a folder name fits several Tilts."""
    known = sorted({c.port: c for c in candidates}.values(), key=lambda c: c.port)
    wanted = value.strip()[: MAX_QUOTE * 10]
    port = _as_port(wanted)
    if port is not None:
        for c in known:
            if c.port == port:
                return c.port
    else:
        hits = [c for c in known if _names_folder(wanted, c)]
        if len(hits) == 1:
            return hits[0].port
        if hits:
            raise AmbiguousInstance(
                f"instance {quote(value)!r} names {len(hits)} Tilts: "
                + ", ".join(f"{c.port} ({c.tiltfile})" for c in hits)
                + "; pass the port instead"
            )
    raise UnknownInstance(value, known)


def _as_port(value: str) -> int | None:
    name = value if value.startswith("tilt-") else f"tilt-{value}"
    return port_of_context(name) if value.isdigit() or value.startswith("tilt-") else None


def _names_folder(value: str, c: Candidate) -> bool:
    folder = c.folder
    if folder is None:
        return False
    if value.startswith("/"):
        path = PurePosixPath(value)
        return path in (folder, PurePosixPath(c.tiltfile or ""))
    return value == folder.name
