"""Pages people look at, served by the daemon on ``[daemon] http``.

``tokens`` and ``incident``: each customer's own incident page (``GET /i/<token>``): what is
affected for them, what they were sent and when, when they hear next, what they are owed, and a
box whose text enters the replies pipeline. ``status`` and ``feeds``: the public status page
(``GET /status``), its Atom feed and its Statuspage-shaped JSON summary. The HTTP side lives in
``web.incident_page`` and ``web.status_page``; the HTML in ``templates/pages/`` (sandboxed, a
user's ``[templates] dir`` may override it).
"""
