"""Column mappings: which header holds which field (``default_mapping.toml`` and the user's)."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from vault.errors import ConfigError
from vault.fields import FieldCatalogue

IGNORE = "ignore"
OBSERVED_AT = "observed_at"
IDENTITY = "identity:"
_SPACES = re.compile(r"\s+")


def header_key(header: str) -> str:
    """A header as the mapping compares it: NFKC (full-width to ASCII), no BOM, spaces folded,
    case folded."""
    text = unicodedata.normalize("NFKC", header).replace("\ufeff", "").strip()
    return _SPACES.sub(" ", text).casefold()


@dataclass(frozen=True, slots=True)
class Mapping:
    columns: dict[str, str]  # header key -> target
    source: str

    def target(self, header: str) -> str | None:
        return self.columns.get(header_key(header))

    def overlay(self, other: Mapping) -> Mapping:
        """``other`` first, then this one."""
        return Mapping({**self.columns, **other.columns}, f"{other.source} + {self.source}")


def _parse(data: dict[str, Any], source: str, catalogue: FieldCatalogue | None) -> Mapping:
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(f'mapping {source}: no [columns] table of HEADER = "field"')
    parsed: dict[str, str] = {}
    for header, target in columns.items():
        if not isinstance(target, str):
            raise ConfigError(f"mapping {source}: column {header!r} must map to a string")
        if target.startswith(IDENTITY):
            platform = target.removeprefix(IDENTITY)
            if not platform.replace("_", "").replace("-", "").isalnum():
                raise ConfigError(f"mapping {source}: bad platform in {target!r}")
        elif (
            target not in (IGNORE, OBSERVED_AT)
            and catalogue is not None
            and (target not in catalogue or target == "platform_id")
        ):
            known = ", ".join(sorted(catalogue))
            raise ConfigError(
                f"mapping {source}: column {header!r} maps to {target!r}, which is not a "
                f"field (fields: {known}; or identity:<platform>, observed_at, ignore)"
            )
        parsed[header_key(header)] = target
    return Mapping(parsed, source)


def _default(catalogue: FieldCatalogue | None) -> Mapping:
    text = files("connectors.file_import").joinpath("default_mapping.toml").read_text("utf-8")
    return _parse(tomllib.loads(text), "default mapping", catalogue)


DEFAULT_MAPPING = _default(None)


def load_mapping(path: str | Path | None, catalogue: FieldCatalogue | None = None) -> Mapping:
    """The user's mapping over the default one (or the default alone)."""
    base = _default(catalogue)
    if path is None:
        return base
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"mapping file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mapping file {path} is not valid UTF-8 TOML: {exc}") from None
    return base.overlay(_parse(data, str(path), catalogue))
