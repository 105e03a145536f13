"""Platform-decryption scenes in the purposes file: loaded, checked, deny by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault.access.policy import SCENES, load_purposes
from vault.errors import ConfigError
from vault.fields import FieldCatalogue

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def catalogue() -> FieldCatalogue:
    return FieldCatalogue.load(POLICIES / "fields.toml")


def purposes_file(tmp_path: Path, scenes: str) -> Path:
    path = tmp_path / "purposes.toml"
    path.write_text(
        "[purposes.care]\nlegal_basis = 'contract'\nfields = ['phone']\n" + scenes,
        encoding="utf-8",
    )
    return path


def test_default_purposes_allow_scenes_only_for_customer_service(catalogue: FieldCatalogue) -> None:
    purposes = load_purposes(POLICIES / "purposes.toml", catalogue)
    assert purposes["customer_service"].scenes == frozenset(SCENES)
    assert all(not p.scenes for name, p in purposes.items() if name != "customer_service")


def test_a_purpose_without_scenes_allows_none(tmp_path: Path, catalogue: FieldCatalogue) -> None:
    care = load_purposes(purposes_file(tmp_path, ""), catalogue)["care"]
    assert not any(care.allows_scene(scene) for scene in SCENES)


@pytest.mark.parametrize(
    ("scenes", "complaint"),
    [
        ("scenes = ['shiping']", "unknown scenes: shiping"),
        ("scenes = ['*']", "must name each scene"),
        ("scenes = 'shipping'", "must be a list of names"),
    ],
)
def test_a_bad_scene_entry_stops_the_vault_naming_it(
    tmp_path: Path, catalogue: FieldCatalogue, scenes: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_purposes(purposes_file(tmp_path, scenes), catalogue)
