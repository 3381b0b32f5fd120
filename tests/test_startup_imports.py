"""What serving imports before the first request stays out of the start-up (issue 13):
the modules the bridge needs only once it talks to Tilt, and the ones structlog would
probe for renderers the bridge does not use. Checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

NOT_AT_START = (
    "h11",  # bridge.tilt._http11: the first request to Tilt
    "httpcore2",  # no pooling HTTP client at all
    "trio",  # httpcore2 imported it when installed
    "rich.traceback",  # structlog.dev's probe (bridge.log hides it)
    "rich.pretty",  # structlog.tracebacks' probe
    "pygments",  # rich.traceback's
    "attr",  # rich.pretty's
    "bridge.demo",  # --demo only
    "bridge.testing",  # the fake Tilt: --demo and tests only
    "bridge.mcp.http",  # the HTTP transport: --transport http only
)


def test_serving_modules_leave_the_tilt_side_and_the_extras_out() -> None:
    code = (
        "import json, sys\n"
        "import bridge.cli, bridge.app, bridge.mcp.app, bridge.mcp.server\n"
        f"print(json.dumps([m for m in {NOT_AT_START!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []


def test_what_bridge_log_hides_stays_importable() -> None:
    code = (
        "import sys, bridge.log, structlog.dev\n"
        "assert structlog.dev.rich is None\n"
        "import rich.traceback, rich.pretty\n"
        "print(rich.traceback.Traceback.__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "Traceback"
