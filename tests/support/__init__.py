"""Helpers of the tests that are not fakes: the sample data, running the CLI and the daemon,
the daemon's web endpoint in a thread, domain objects to render, channels to drive, and what
Babel makes of a time or an amount (the expectations the tests compute rather than copy)."""
