"""Bounded ``grep``: a pattern compiled with the ``regex`` package, searched with a time
budget, so no pattern an agent sends can stall the bridge.

CPython's ``re`` holds the GIL while it matches and has no timeout: ``(.*.*)*=`` on one
line never ends and blocks every other call and push. Here:

* the pattern is at most :data:`~bridge.core.inputs.MAX_GREP` characters, and its
  bounded repeats may not expand past :data:`MAX_EXPANSION` (``regex`` unrolls
  ``(a{100}){100}``-style repeats when compiling: a few nested ones exhaust memory);
* each search gets what is left of a per-call budget (:data:`BUDGET_S`) as its
  ``timeout`` and releases the GIL (``concurrent=True``), so the MCP layer can run the
  whole query in a worker thread while the event loop keeps answering;
* when the budget runs out, :class:`GrepBudgetExceeded` says how to narrow the query.
"""

from __future__ import annotations

import time
from typing import Final, Protocol

from bridge.core.inputs import MAX_GREP, check_text, quote
from bridge.errors import ToolError

BUDGET_S: Final = 3.0
"""Matching time one get_logs call may spend, all lines together."""
MAX_EXPANSION: Final = 20_000
"""Largest product of nested bounded repeats (``{m,n}``) a pattern may have."""


class _Compiled(Protocol):
    def search(self, string: str, /, *, timeout: float, concurrent: bool) -> object: ...


class GrepBudgetExceeded(ToolError):
    """The pattern used up the call's matching budget."""


def expansion(pattern: str) -> int:
    """An upper estimate of how far ``regex`` unrolls the pattern's bounded repeats: each
    ``{n}``/``{m,n}`` multiplies the atom or group before it. Character classes and
    escapes count as one atom. Deliberately simple: it only has to catch nesting."""
    stack: list[int] = [0]  # size of the group being read, per open parenthesis
    last = 0  # size of the atom or group just read (what a quantifier applies to)
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            last = 1
            stack[-1] += 1
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            last = 1
            stack[-1] += 1
            continue
        if c == "(":
            stack.append(0)
        elif c == ")":
            inner = stack.pop() if len(stack) > 1 else 0
            last = max(inner, 1)
            stack[-1] += last
        elif c == "{":
            j = pattern.find("}", i)
            body = pattern[i + 1 : j] if j > 0 else ""
            bounds = [b.strip() for b in body.split(",")]
            if j > 0 and len(bounds) <= 2 and all(b.isdigit() or b == "" for b in bounds):
                count = max((int(b) for b in bounds if b), default=1)
                if bounds[-1] == "" and len(bounds) == 2:
                    count = max(count, 1)  # {m,} loops; only m copies are unrolled
                stack[-1] += last * (count - 1)
                last *= count
                i = j + 1
                continue
            last = 1
            stack[-1] += 1
        elif c not in "|*+?":
            last = 1
            stack[-1] += 1
        i += 1
    return sum(stack)


class BoundedPattern:
    """A compiled pattern whose searches share one time budget (see the module doc)."""

    __slots__ = ("_deadline", "_pattern", "budget_s", "searched", "source")

    def __init__(self, source: str, pattern: _Compiled, budget_s: float) -> None:
        self.source = source
        self._pattern = pattern
        self.budget_s = budget_s
        self._deadline: float | None = None
        self.searched = 0

    def search(self, string: str, /) -> object:
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.budget_s  # starts with the first line, not queued
        left = self._deadline - now
        if left <= 0:
            raise self._exceeded()
        try:
            found = self._pattern.search(string, timeout=left, concurrent=True)
        except TimeoutError:
            raise self._exceeded() from None
        self.searched += 1
        return found

    def _exceeded(self) -> GrepBudgetExceeded:
        return GrepBudgetExceeded(
            f"grep={quote(self.source)} used up its {self.budget_s:g} s matching budget "
            f"after {self.searched} lines; narrow the query: name a resource, add "
            "since=… or level=…, lower tail, or use a simpler pattern (regex=false "
            "searches plain text)"
        )


def compile_grep(
    pattern: str | None, *, use_regex: bool = True, budget_s: float = BUDGET_S
) -> BoundedPattern | None:
    """``grep`` (case-insensitive; plain text when ``use_regex`` is false) → a bounded
    pattern, or a ToolError that names the argument and what is allowed."""
    if not pattern:
        return None
    check_text("grep", pattern, MAX_GREP, "a pattern")
    # Imported with the first grep, not at start-up (~8 ms before `initialize`).
    import regex  # type: ignore[import-untyped]  # no stubs shipped; typed by _Compiled

    source = pattern if use_regex else regex.escape(pattern)
    if use_regex and expansion(pattern) > MAX_EXPANSION:
        raise ToolError(
            f"grep={quote(pattern)} nests counted repeats ({{n}}) too deeply: it would "
            f"unroll past {MAX_EXPANSION} steps; use + or * instead of large counts"
        )
    try:
        compiled: _Compiled = regex.compile(source, regex.IGNORECASE | regex.V0)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        reason = str(exc)[:120]
        raise ToolError(
            f"grep={quote(pattern)} is not a valid regular expression ({reason}); "
            "pass regex=false to search for the plain text"
        ) from None
    return BoundedPattern(pattern, compiled, budget_s)
