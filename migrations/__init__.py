"""Alembic environment and versions: the only way the vault's schema changes."""
