from __future__ import annotations

from pathlib import Path

import pytest

from vault.config import VaultHome
from vault.errors import ConfigError, InvalidValue
from vault.fields import FieldCatalogue


def test_default_catalogue_loads_and_marks_personal_fields_encrypted() -> None:
    catalogue = FieldCatalogue.load(VaultHome.resolve("/nonexistent").policy_file("fields.toml"))
    assert {
        "name",
        "phone",
        "email",
        "id_number",
        "address",
        "birthday",
        "nickname",
        "note",
    } <= set(catalogue)
    assert all(spec.encrypted for spec in catalogue.values() if spec.personal)
    assert catalogue["id_number"].sensitive
    assert set(catalogue.searchable) >= {"phone", "email", "id_number"}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("fields = 3", "no \\[fields.NAME\\]"),
        ("[fields.x]\ntype = 'banana'", "type 'banana'"),
        ("[fields.x]\npersonal = true\nencrypted = false", "must be encrypted"),
        ("[fields.x]\nsensitive = true\npersonal = false", "must be personal"),
        ("[fields.x]\ncolour = 'red'", "unknown keys: colour"),
        ("[fields.Bad-Name]\ntype = 'text'", "must match"),
        ("[fields.x]\nmask = 'blur'", "mask 'blur'"),
        ("[fields.x\n", "not valid TOML"),
    ],
)
def test_broken_catalogue_is_refused_with_a_clear_error(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "fields.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        FieldCatalogue.load(path)


def test_unknown_field_names_the_known_ones() -> None:
    catalogue = FieldCatalogue.from_dict({"fields": {"phone": {"type": "phone"}}}, source="t")
    with pytest.raises(InvalidValue, match="known: phone"):
        catalogue.spec("fax")


def test_over_long_value_is_refused() -> None:
    catalogue = FieldCatalogue.from_dict(
        {"fields": {"note": {"type": "text", "max_length": 5}}}, source="t"
    )
    with pytest.raises(InvalidValue, match="longer than 5"):
        catalogue["note"].normalise("123456")
