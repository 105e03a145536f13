"""The API's routes, one module per area; each module has a ``router``."""
