"""The default policy files, read at start (plain TOML).

``vault init`` copies them into the vault home (``VAULT_HOME/policies/``), where a shop edits
its own; a vault home without them uses these defaults.
"""
