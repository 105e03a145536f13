"""Layers point one way: a module imports only its own layer or the ones below.

Read from the source (``ast``), so an import inside a function counts as much as one at the top;
imports under ``if TYPE_CHECKING:`` do not (they never run). From the bottom up:

0. errors, config, log, records, serialise, hookspecs, sandbox: what everything may use
1. synthetic, fields, crypto, textfile, plugins (the plugin manager, reached from anywhere)
2. store
3. access, audit
4. door
5. the door's areas: consent, export, segments, sync
6. session
7. the vault and its faces: vault.vault, the package, demo, service, cli

Beside the order: nothing in ``vault/`` imports ``connectors`` (the library reaches plugins
through the plugin manager only), and connectors use the vault's public pieces only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: dict[str, int] = {
    **dict.fromkeys(("errors", "config", "log", "records", "serialise", "hookspecs", "sandbox"), 0),
    **dict.fromkeys(("synthetic", "fields", "crypto", "plugins", "textfile"), 1),
    "store": 2,
    **dict.fromkeys(("access", "audit"), 3),
    "door": 4,
    **dict.fromkeys(("consent", "export", "segments", "sync"), 5),
    "session": 6,
    **dict.fromkeys(("vault", "__init__", "demo", "service", "cli"), 7),
}

KNOWN_UPWARD: dict[tuple[str, str], str] = {
    # The Session/Door import circle: the areas' operations are mixins of Session and import
    # it (helpers "door" and "audit" are reworking these files; see issue 17).
    ("consent", "session"): "Session area mixin",
    ("segments", "session"): "Session area mixin",
    ("sync", "session"): "Session area mixin",
    # The plugin manager checks what plugins contribute against the connector contract.
    ("plugins", "sync"): "contributions are checked against vault.sync.Connector",
    # A demo drives a whole vault (owned by helper "times"; it could move to vault/demo.py).
    ("vault/segments/demo.py", "vault"): "the segments demo opens a Vault",
}

CONNECTORS_MAY_USE = (
    "vault.errors",
    "vault.fields",
    "vault.hookspecs",
    "vault.records",
    "vault.sandbox",
    "vault.sync",  # the contract, the HTTP kit (vault.sync.http), values (vault.sync.values)
    "vault.synthetic",
    "vault.textfile",  # reading untrusted text files within limits
    "vault",  # ``from vault import hookimpl``
)
CONNECTORS_MAY_NOT_USE = (
    "vault.store",
    "vault.session",
    "vault.door",
    "vault.cli",
    "vault.service",
)


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports at run time (not under ``if TYPE_CHECKING``), with its
    line. ``from a.b import c`` yields ``a.b.c`` (``c`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def area(module: str) -> str | None:
    """The layer area of a ``vault`` module (``vault.store.customers`` -> ``store``)."""
    parts = module.split(".")
    if parts[0] != "vault":
        return None
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    # ``from vault import hookimpl``: a name of the package, not a module
    return name if name in LAYERS else "__init__"


def vault_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / "vault").rglob("*.py")):
        relative = path.relative_to(ROOT / "vault")
        yield relative.parts[0].removesuffix(".py"), path


def test_every_area_of_the_vault_has_a_layer() -> None:
    assert {name for name, _ in vault_modules()} <= set(LAYERS)


def upward_imports() -> list[str]:
    found = []
    for source, path in vault_modules():
        for module, line in imports(path):
            target = area(module)
            if target is None or target == source:
                continue
            where = path.relative_to(ROOT)
            known = (source, target) in KNOWN_UPWARD or (str(where), target) in KNOWN_UPWARD
            if LAYERS[target] > LAYERS[source] and not known:
                found.append(
                    f"{where}:{line} ({source}, layer {LAYERS[source]}) imports "
                    f"{module} ({target}, layer {LAYERS[target]})"
                )
    return found


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward_imports() == []


def test_the_store_sits_below_the_segments() -> None:
    """Region derivation lives in vault.fields; segment upkeep is handed to the store."""
    store = [
        (path.name, module)
        for source, path in vault_modules()
        if source == "store"
        for module, _ in imports(path)
        if area(module) in ("segments", "sync", "session", "door", "export", "consent")
    ]
    assert store == []


def test_the_library_reaches_connectors_only_through_the_plugin_manager() -> None:
    direct = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for _, path in vault_modules()
        for module, line in imports(path)
        if module.split(".")[0] == "connectors"
    ]
    assert direct == []


@pytest.mark.parametrize(
    "path", sorted((ROOT / "connectors").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_connectors_use_only_the_public_pieces_of_the_vault(path: Path) -> None:
    used = [module for module, _ in imports(path) if module.split(".")[0] == "vault"]
    assert not [m for m in used if m.startswith(CONNECTORS_MAY_NOT_USE)]
    assert all(m.startswith(CONNECTORS_MAY_USE) for m in used), used


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The check is not vacuous: a store module importing the segments is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "from vault.segments import on_orders_changed\n"
        "if TYPE_CHECKING:\n    from vault.session import Session\n"
        "def f():\n    import connectors.youzan\n",
        encoding="utf-8",
    )
    found = {module for module, _ in imports(bad)}
    assert "vault.segments.on_orders_changed" in found
    assert "connectors.youzan" in found
    assert not any(m.startswith("vault.session") for m in found)
    assert LAYERS[area("vault.segments.on_orders_changed") or ""] > LAYERS["store"]
