"""What ``vault connectors list`` shows: every connector found, where it came from, what it does."""

from __future__ import annotations

from typing import Any

from vault.sync.contract import Connector


def region_of(cls: type[Connector]) -> str:
    """A connector's region as declared by its class: ``mainland`` unless it decides by its
    settings (an overridden ``region``, like Zoho's data centre)."""
    return "mainland" if cls.region is Connector.region else "by settings"


def describe_connectors() -> dict[str, Any]:
    """Every connector (name, plugin, platform, region, pulls, pushes, settings) and the plugins
    that failed to load, by name."""
    from vault.plugins import connector_classes, plugin_load_errors

    found = connector_classes()
    return {
        "connectors": [
            {
                "name": name,
                "plugin": plugin,
                "platform": cls.info.platform,
                "region": region_of(cls),
                "description": cls.info.description,
                "pulls": sorted(cls.info.pulls),
                "pushes": sorted(cls.info.pushes),
                "settings": [
                    {"name": s.name, "secret": s.secret, "required": s.required}
                    for s in cls.info.settings
                ],
                "sandbox": cls.sandbox,
            }
            for name, (cls, plugin) in sorted(found.items())
        ],
        "load_errors": dict(sorted(plugin_load_errors().items())),
    }
