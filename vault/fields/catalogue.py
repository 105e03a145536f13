"""The field catalogue: which customer fields exist and how each is kept (``policies/fields.toml``).

Adding a field is an edit of that file, not of code. Each field says its type (which decides
its normaliser), whether it is personal or *sensitive* personal information (PIPL art. 28),
whether it is encrypted (every personal field must be), whether it is searchable through a
blind index, its mask style and its maximum length.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.errors import ConfigError, InvalidValue
from vault.fields.normalise import NORMALISERS, Normalised

FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MASK_STYLES = frozenset(
    {"phone", "email", "name", "id_number", "address", "date", "hidden", "partial", "none"}
)
_FIELD_KEYS = frozenset(
    {
        "label",
        "label_zh",
        "type",
        "personal",
        "sensitive",
        "encrypted",
        "searchable",
        "mask",
        "max_length",
        "retention_days",
        "description",
    }
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    type: str
    personal: bool
    sensitive: bool
    encrypted: bool
    searchable: bool
    mask: str
    max_length: int
    description: str = ""
    retention_days: int | None = None  # values observed longer ago are removed by retention
    label_zh: str = ""  # the Chinese label (`vault export --headers zh`); the label when empty

    def normalise(self, value: str) -> Normalised:
        if not isinstance(value, str):
            raise TypeError(f"field {self.name!r} takes a str, got {type(value).__name__}")
        result = NORMALISERS[self.type](value, self.name)
        if len(result.value) > self.max_length:
            raise InvalidValue(field=self.name, reason=f"longer than {self.max_length} characters")
        return result


class FieldCatalogue(Mapping[str, FieldSpec]):
    """The loaded catalogue; a mapping from field name to :class:`FieldSpec`."""

    def __init__(self, fields: Mapping[str, FieldSpec], *, version: int, source: str) -> None:
        self._fields = dict(fields)
        self.version = version
        self.source = source

    def __getitem__(self, name: str) -> FieldSpec:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def spec(self, name: str) -> FieldSpec:
        """The spec of ``name``, or an :class:`InvalidValue` naming the known fields."""
        try:
            return self._fields[name]
        except KeyError:
            known = ", ".join(sorted(self._fields))
            raise InvalidValue(
                field=name, reason=f"not in the field catalogue ({self.source}); known: {known}"
            ) from None

    @property
    def searchable(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self._fields.items() if spec.searchable)

    @classmethod
    def load(cls, path: Path) -> FieldCatalogue:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"field catalogue {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"field catalogue {path} is not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str) -> FieldCatalogue:
        def fail(message: str) -> ConfigError:
            return ConfigError(f"field catalogue {source}: {message}")

        version = data.get("version", 1)
        if not isinstance(version, int):
            raise fail("'version' must be an integer")
        raw_fields = data.get("fields")
        if not isinstance(raw_fields, dict) or not raw_fields:
            raise fail("no [fields.NAME] tables")
        fields: dict[str, FieldSpec] = {}
        for name, raw in raw_fields.items():
            if not FIELD_NAME.fullmatch(name):
                raise fail(f"field name {name!r} must match {FIELD_NAME.pattern}")
            if not isinstance(raw, dict):
                raise fail(f"[fields.{name}] must be a table")
            unknown = set(raw) - _FIELD_KEYS
            if unknown:
                raise fail(f"[fields.{name}] has unknown keys: {', '.join(sorted(unknown))}")
            field_type = raw.get("type", "text")
            if field_type not in NORMALISERS:
                raise fail(
                    f"[fields.{name}] type {field_type!r} is not one of "
                    f"{', '.join(sorted(NORMALISERS))}"
                )
            personal = bool(raw.get("personal", True))
            sensitive = bool(raw.get("sensitive", False))
            encrypted = bool(raw.get("encrypted", personal))
            if sensitive and not personal:
                raise fail(f"[fields.{name}] is sensitive, so it must be personal")
            if personal and not encrypted:
                raise fail(f"[fields.{name}] is personal, so it must be encrypted")
            mask = raw.get("mask", "hidden" if personal else "none")
            if mask not in MASK_STYLES:
                raise fail(f"[fields.{name}] mask {mask!r} is not one of {sorted(MASK_STYLES)}")
            max_length = raw.get("max_length", 1000)
            if not isinstance(max_length, int) or max_length <= 0:
                raise fail(f"[fields.{name}] max_length must be a positive integer")
            retention_days = raw.get("retention_days")
            if retention_days is not None and (
                not isinstance(retention_days, int) or retention_days <= 0
            ):
                raise fail(f"[fields.{name}] retention_days must be a positive whole number")
            fields[name] = FieldSpec(
                name=name,
                label=str(raw.get("label", name)),
                label_zh=str(raw.get("label_zh", "")),
                type=field_type,
                personal=personal,
                sensitive=sensitive,
                encrypted=encrypted,
                searchable=bool(raw.get("searchable", False)),
                mask=mask,
                max_length=max_length,
                description=str(raw.get("description", "")),
                retention_days=retention_days,
            )
        return cls(fields, version=version, source=source)
