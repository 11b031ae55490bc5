"""Incidents: the lifecycle (declare, update, resolve, edit), pre-flight of every template before
anything is queued, the pure promise arithmetic, and the read models for ``list``/``show``."""
