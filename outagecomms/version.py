"""The package version, in a module of its own so that any part can name it without importing
the package's public face (which names every part)."""

__version__ = "0.1.0"  # keep in step with pyproject.toml
