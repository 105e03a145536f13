"""Acme Shop: the example third-party connector of ``connectors/README.md``."""
