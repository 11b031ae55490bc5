"""Turning a round into messages: the sandboxed Jinja2 templates (``templates``), MIME email
(``mime``), and ``preview``."""
