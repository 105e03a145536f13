"""``python -m vault.cli``: the same as the ``vault`` command."""

from vault.cli import main

main()
