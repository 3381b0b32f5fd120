"""``python -m bridge``: the same as the ``tilt-mcp-bridge`` command."""

import sys

from bridge.cli import main

sys.exit(main())
