"""Service recovery: what each affected customer is owed after an incident (credits), and later
goodwill offers, follow-up and the post-incident report. ``credits`` is the pure credit engine."""
