"""The customer directory: parsing and validating files (``parse``), importing them all or
nothing (``importer``), selecting an incident's audience (``audience``), and listing (``views``)."""
