"""The command line: parses, calls one library function, prints. ``main`` is the entry point."""

from outagecomms.cli.app import app, main

__all__ = ["app", "main"]
