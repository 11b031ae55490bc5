"""What customers send back: replies, auto-replies, bounces and texts, stored, classified,
matched to the incident, and acted on (``pipeline``)."""
