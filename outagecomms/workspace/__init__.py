"""A project folder: ``init`` scaffolds one, ``doctor`` checks it."""
