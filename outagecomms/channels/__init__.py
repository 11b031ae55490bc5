"""Delivery channels: one module per channel, one protocol (``channels.base``)."""
