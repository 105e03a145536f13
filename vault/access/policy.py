"""Roles and purposes from ``policies/roles.toml`` and ``policies/purposes.toml``.

A policy file that does not parse, or names an unknown field, action, purpose or view, stops the
vault at start with a :class:`~vault.errors.ConfigError` naming the file and the entry. Deny by
default: a role may take only the actions it lists, for the purposes it lists, and sees a field
only as its view says.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.errors import ConfigError
from vault.fields import FieldCatalogue

ACTIONS = (
    "read",
    "search",
    "write",
    "import",
    "sync",
    "decrypt",
    "export",
    "erase",
    "consent",
    "audit",
    "keys",
    "principals",
)
VIEWS = ("hidden", "masked", "clear")  # in order of what they reveal
LEGAL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_interest",
    "legitimate_interests",
)
ALL = "*"
SCENES = ("shipping", "after_sales", "customer_service")
"""Why a platform may be asked to decrypt its own ciphertext (Taobao's OAID decrypt scenes,
Pinduoduo's batch decrypt): a purpose lists the scenes it allows in ``scenes = [...]``."""


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    description: str
    legal_basis: str
    separate_consent: bool
    fields: frozenset[str]
    retention_days: int
    version: int = 1  # bumped when the purpose's terms change; older grants need renewal
    scenes: frozenset[str] = frozenset()  # platform-decryption scenes this purpose allows

    def allows_scene(self, scene: str) -> bool:
        return scene in self.scenes

    def allows_field(self, field: str) -> bool:
        return ALL in self.fields or field in self.fields


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    description: str
    actions: frozenset[str]
    purposes: frozenset[str]
    default_view: str
    field_views: Mapping[str, str]

    def view(self, field: str) -> str:
        return self.field_views.get(field, self.default_view)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a policy check, with its reason and the rule that decided."""

    allowed: bool
    reason: str
    rule: str


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"policy file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy file {path} is not valid TOML: {exc}") from None


def _names(value: Any, *, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of names")
    return frozenset(value)


def _unknown(names: frozenset[str], known: Any, *, where: str, kind: str) -> None:
    unknown = sorted(names - set(known) - {ALL})
    if unknown:
        raise ConfigError(
            f"{where} names unknown {kind}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )


def load_purposes(path: Path, catalogue: FieldCatalogue) -> dict[str, Purpose]:
    data = _load_toml(path)
    raw = data.get("purposes")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"policy file {path} has no [purposes.NAME] tables")
    purposes: dict[str, Purpose] = {}
    for name, entry in raw.items():
        where = f"{path}: [purposes.{name}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        basis = entry.get("legal_basis")
        if basis not in LEGAL_BASES:
            raise ConfigError(f"{where} legal_basis must be one of {', '.join(LEGAL_BASES)}")
        fields = _names(entry.get("fields", []), where=f"{where} fields")
        _unknown(fields, catalogue, where=where, kind="fields")
        retention = entry.get("retention_days", 0)
        if not isinstance(retention, int) or retention < 0:
            raise ConfigError(f"{where} retention_days must be a whole number of days")
        version = entry.get("version", 1)
        if not isinstance(version, int) or version < 1:
            raise ConfigError(f"{where} version must be a whole number from 1")
        scenes = _names(entry.get("scenes", []), where=f"{where} scenes")
        if ALL in scenes:
            raise ConfigError(f'{where} scenes must name each scene; "*" is not allowed')
        _unknown(scenes, SCENES, where=f"{where} scenes", kind="scenes")
        purposes[name] = Purpose(
            name=name,
            description=str(entry.get("description", "")),
            legal_basis=basis,
            separate_consent=bool(entry.get("separate_consent", False)),
            fields=fields,
            retention_days=retention,
            version=version,
            scenes=scenes,
        )
    return purposes


def load_roles(
    path: Path, catalogue: FieldCatalogue, purposes: Mapping[str, Purpose]
) -> dict[str, Role]:
    data = _load_toml(path)
    raw = data.get("roles")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"policy file {path} has no [roles.NAME] tables")
    roles: dict[str, Role] = {}
    for name, entry in raw.items():
        where = f"{path}: [roles.{name}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        actions = _names(entry.get("actions", []), where=f"{where} actions")
        _unknown(actions, ACTIONS, where=where, kind="actions")
        role_purposes = _names(entry.get("purposes", []), where=f"{where} purposes")
        _unknown(role_purposes, purposes, where=where, kind="purposes")
        default_view = entry.get("default_view", "hidden")
        if default_view not in VIEWS:
            raise ConfigError(f"{where} default_view must be one of {', '.join(VIEWS)}")
        views = entry.get("fields", {})
        if not isinstance(views, dict):
            raise ConfigError(f"{where}.fields must be a table of field = view")
        _unknown(frozenset(views), catalogue, where=f"{where}.fields", kind="fields")
        for field, view in views.items():
            if view not in VIEWS:
                raise ConfigError(
                    f"{where}.fields {field} = {view!r}: a view is one of {', '.join(VIEWS)}"
                )
        roles[name] = Role(
            name=name,
            description=str(entry.get("description", "")),
            actions=actions,
            purposes=role_purposes,
            default_view=default_view,
            field_views=dict(views),
        )
    return roles


class Policy:
    """The loaded roles and purposes, and the decisions drawn from them."""

    def __init__(
        self,
        *,
        catalogue: FieldCatalogue,
        purposes: Mapping[str, Purpose],
        roles: Mapping[str, Role],
    ) -> None:
        self.catalogue = catalogue
        self.purposes = dict(purposes)
        self.roles = dict(roles)

    @classmethod
    def load(cls, catalogue: FieldCatalogue, purposes_file: Path, roles_file: Path) -> Policy:
        purposes = load_purposes(purposes_file, catalogue)
        return cls(
            catalogue=catalogue,
            purposes=purposes,
            roles=load_roles(roles_file, catalogue, purposes),
        )

    def check_roles(self, names: tuple[str, ...], *, where: str) -> None:
        unknown = [name for name in names if name not in self.roles]
        if unknown:
            raise ConfigError(
                f"{where} holds unknown roles: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(self.roles))})"
            )

    def decide(self, roles: tuple[str, ...], action: str, purpose: str | None) -> Decision:
        """May a principal holding ``roles`` take ``action`` for ``purpose``? Deny by default."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        granted = [
            self.roles[r] for r in roles if r in self.roles and action in self.roles[r].actions
        ]
        if not granted:
            return Decision(
                False, f"no role of {', '.join(roles) or 'none'} grants {action!r}", "role"
            )
        if purpose is None:
            return Decision(True, f"role {granted[0].name} grants {action!r}", "role")
        if purpose not in self.purposes:
            return Decision(False, f"unknown purpose {purpose!r}", "purpose")
        for role in granted:
            if ALL in role.purposes or purpose in role.purposes:
                return Decision(
                    True, f"role {role.name} grants {action!r} for {purpose!r}", "role+purpose"
                )
        return Decision(
            False,
            f"no role of {', '.join(roles)} may {action} for purpose {purpose!r}",
            "purpose",
        )

    def view(self, roles: tuple[str, ...], field: str, purpose: str | None) -> str:
        """How a principal sees ``field`` when acting for ``purpose``: the most revealing view of
        its roles, and ``hidden`` when the purpose does not cover the field."""
        known = self.purposes.get(purpose) if purpose is not None else None
        if known is not None and not known.allows_field(field):
            return "hidden"
        best = 0
        for name in roles:
            role = self.roles.get(name)
            if role is not None:
                best = max(best, VIEWS.index(role.view(field)))
        return VIEWS[best]
