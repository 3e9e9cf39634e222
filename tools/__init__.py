"""Developer and operator tools (``python -m tools.run``); not imported by any service."""
