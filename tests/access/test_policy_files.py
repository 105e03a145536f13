"""A broken policy file stops the vault at start with an error that names what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vault import ConfigError, Vault
from vault.cli import cli


def edit(home: Path, name: str, old: str, new: str) -> None:
    path = home / "policies" / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def closed_home(initialised: tuple[Vault, str], home: Path) -> Path:
    initialised[0].close()
    return home


BREAKAGES = [
    ("roles.toml", "[roles.support]", "[roles.support", "roles.toml is not valid TOML"),
    (
        "roles.toml",
        'actions = ["audit"]',
        'actions = ["audit", "gossip"]',
        "unknown actions: gossip",
    ),
    (
        "roles.toml",
        'purposes = ["compliance"]',
        'purposes = ["compliance", "resale"]',
        "unknown purposes: resale",
    ),
    ("purposes.toml", 'legal_basis = "contract"', 'legal_basis = "whim"', "legal_basis must be"),
    (
        "purposes.toml",
        'fields = ["name", "phone", "preferred_language"]',
        'fields = ["name", "shoe_size"]',
        "unknown fields: shoe_size",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "message"), BREAKAGES)
def test_broken_policy_file_stops_the_vault_with_a_clear_error(
    closed_home: Path, name: str, old: str, new: str, message: str
) -> None:
    edit(closed_home, name, old, new)
    with pytest.raises(ConfigError, match=message):
        Vault.open(closed_home)
    result = CliRunner().invoke(cli, ["--home", str(closed_home), "customer", "list"])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
