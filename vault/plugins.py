"""The plugin manager: built-in plugins and those found through the ``vault`` entry points.

Entry points are loaded lazily, on the first call of :func:`get_plugin_manager`, not at import.
A plugin that fails to load is reported by name (:func:`plugin_load_errors`) and does not stop
the others.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, cast

import pluggy
import structlog

from vault import hookspecs

if TYPE_CHECKING:
    from vault.sandbox import Sandbox
    from vault.sync import Connector

ENTRY_POINT_GROUP = "vault"
BUILTIN_PLUGINS: tuple[str, ...] = ("vault.export.formats",)

_log = structlog.get_logger("vault.plugins")
_manager: pluggy.PluginManager | None = None
_load_errors: dict[str, str] = {}  # entry points that failed to load, for the process
_contribution_errors: dict[str, str] = {}  # plugins whose connectors were refused, last look


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("vault")
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if manager.has_plugin(entry_point.name):
            continue
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as exc:  # a broken plugin must not stop the others
            _load_errors[entry_point.name] = f"{type(exc).__name__}: {exc}"
            _log.warning("plugin_load_failed", plugin=entry_point.name, error=type(exc).__name__)
    manager.check_pending()
    return manager


def get_plugin_manager() -> pluggy.PluginManager:
    global _manager
    if _manager is None:
        _manager = _new_manager()
    return _manager


def plugin_load_errors() -> dict[str, str]:
    """Plugins that failed to load or whose connectors were refused, by name, with the reason.

    Load failures last for the process; refused contributions are those of the plugins
    registered now (a plugin unregistered since is no longer reported).
    """
    get_plugin_manager()
    connector_classes()
    return {**_load_errors, **_contribution_errors}


def connector_classes() -> dict[str, tuple[type[Connector], str]]:
    """Every connector the plugins contribute, by name, with the plugin it came from.

    A name contributed twice keeps the first plugin's class; the second is reported as a load
    error, so one bad plugin never hides another's connectors.
    """
    from vault.sync import Connector

    manager = get_plugin_manager()
    found: dict[str, tuple[type[Connector], str]] = {}
    refused: dict[str, str] = {}
    for impl in reversed(manager.hook.vault_register_connectors.get_hookimpls()):
        plugin = manager.get_name(impl.plugin) or repr(impl.plugin)
        try:
            classes = cast("list[type[Connector]]", impl.function() or [])
        except Exception as exc:  # a broken plugin must not stop the others
            refused[plugin] = f"{type(exc).__name__}: {exc}"
            continue
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, Connector)):
                refused[plugin] = f"contributed {cls!r}, which is not a Connector subclass"
                continue
            name = cls.info.name
            if name in found:
                refused[plugin] = f"connector {name!r} is already contributed by {found[name][1]}"
                continue
            found[name] = (cls, plugin)
    _contribution_errors.clear()
    _contribution_errors.update(refused)
    return found


def sandbox_class(name: str) -> type[Sandbox]:
    """The emulator class of connector ``name`` (its ``sandbox`` attribute, ``module:Class``):
    the one way the library (``vault sandbox``, the demo) reaches a connector's sandbox."""
    from vault.errors import ConfigError
    from vault.sandbox import Sandbox

    connectors = connector_classes()
    if name not in connectors:
        known = ", ".join(sorted(connectors)) or "none installed"
        raise ConfigError(f"no connector named {name!r} (connectors: {known})")
    target = connectors[name][0].sandbox
    if not target:
        raise ConfigError(f"connector {name!r} ships no sandbox")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Sandbox)):
        raise ConfigError(f"connector {name!r}: {target} is not a vault.sandbox.Sandbox")
    return cls
