"""Source ranking (``policies/sources.toml``) and the merge rule for one field.

When a new observation of a field meets the stored one:

1. a masked value (``138****8000``, ``张*``) never overwrites a full one;
2. a full value always replaces a masked one;
3. otherwise the source that ranks higher for that field wins, and between equal ranks the newer
   observation wins (an observation no newer than the stored one changes nothing, which is what
   makes a re-sync of the same records a no-op).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vault.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Observation:
    source: str
    observed_at: datetime
    masked: bool


class SourceRanking:
    def __init__(
        self,
        *,
        default_rank: int = 50,
        sources: Mapping[str, int] | None = None,
        fields: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self.default_rank = default_rank
        self.sources = dict(sources or {})
        self.fields = {name: dict(ranks) for name, ranks in (fields or {}).items()}

    def rank(self, source: str, field: str) -> int:
        per_field = self.fields.get(field)
        if per_field is not None and source in per_field:
            return per_field[source]
        return self.sources.get(source, self.default_rank)

    def wins(self, field: str, incoming: Observation, existing: Observation | None) -> bool:
        """Whether ``incoming`` replaces ``existing`` as the value of ``field``."""
        if existing is None:
            return True
        if incoming.masked != existing.masked:
            return existing.masked  # full beats masked, both ways
        ours, theirs = self.rank(incoming.source, field), self.rank(existing.source, field)
        if ours != theirs:
            return ours > theirs
        return incoming.observed_at > existing.observed_at

    @classmethod
    def load(cls, path: Path) -> SourceRanking:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"source ranking {path} is not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str) -> SourceRanking:
        def ranks(table: Any, where: str) -> dict[str, int]:
            if not isinstance(table, dict):
                raise ConfigError(f"source ranking {source}: [{where}] must be a table")
            for name, value in table.items():
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ConfigError(
                        f"source ranking {source}: [{where}] {name} must be an integer rank"
                    )
            return dict(table)

        default = data.get("default_rank", 50)
        if not isinstance(default, int):
            raise ConfigError(f"source ranking {source}: default_rank must be an integer")
        fields = data.get("fields", {})
        if not isinstance(fields, dict):
            raise ConfigError(f"source ranking {source}: [fields] must hold tables")
        return cls(
            default_rank=default,
            sources=ranks(data.get("sources", {}), "sources"),
            fields={name: ranks(t, f"fields.{name}") for name, t in fields.items()},
        )
