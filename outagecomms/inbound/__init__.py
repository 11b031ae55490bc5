"""Inbound messages: customers' replies, bounces and auto-replies to our notices."""
