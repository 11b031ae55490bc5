"""Fake providers on loopback, one module per provider, and the injectable clock.

- :mod:`tests.fakes.asgi`: serving a fake (uvicorn in a thread), the one :class:`Reply` a test
  scripts, the one :class:`Recorded` request, and the :class:`Gauge` that counts connections;
- :mod:`tests.fakes.smtp`: aiosmtpd recording handler, and a raw scripted SMTP server;
- :mod:`tests.fakes.slack`, :mod:`tests.fakes.teams`, :mod:`tests.fakes.webhook`: what each
  provider documents about a request, checked independently of the channel's code;
  :mod:`tests.fakes.providers` serves the three by path on one port; ``webhook`` also holds
  the customers' webhook receiver of the end-to-end tests;
- :mod:`tests.fakes.twilio`, :mod:`tests.fakes.statuspage`, :mod:`tests.fakes.apprise`;
- :mod:`tests.fakes.clock`: the :class:`FakeClock` an :class:`~outagecomms.app.App` takes.

The pytest fixtures that serve them are in ``tests/conftest.py``.
"""
