"""Customer fields: the catalogue from ``policies/fields.toml`` and the value normalisers."""

from vault.fields.catalogue import FieldCatalogue, FieldSpec
from vault.fields.normalise import Normalised

__all__ = ["FieldCatalogue", "FieldSpec", "Normalised"]
