"""The daemon's HTTP listener: feedback pages, alert hooks, ``/metrics`` and ``/healthz``."""
