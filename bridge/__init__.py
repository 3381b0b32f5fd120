"""tilt-mcp-bridge: a live view of a running Tilt for MCP clients."""

__version__ = "0.1.0"
