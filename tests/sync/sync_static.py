"""Connectors made in a test: each serves fixed pages, no network. Register with ``plugged``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from vault import plugins
from vault.hookspecs import hookimpl
from vault.sync import (
    Connector,
    ConnectorInfo,
    Cursor,
    OutboundCustomer,
    Page,
    PushOutcome,
    Record,
)


def static_connector(
    name: str,
    pages: Sequence[Sequence[Record]],
    *,
    platform: str | None = None,
    region: str = "mainland",
    pushes: frozenset[str] = frozenset(),
) -> type[Connector]:
    """A connector class whose ``customers`` stream is ``pages``; pushes are recorded in
    ``cls.pushed`` / ``cls.deleted``."""

    class Static(Connector):
        info = ConnectorInfo(
            name=name,
            platform=platform or name,
            description=f"static pages for tests ({name})",
            pulls=frozenset({"customers"}),
            pushes=pushes,
        )
        pushed: list[OutboundCustomer] = []  # noqa: RUF012  (shared on purpose: tests read it)
        deleted: list[str] = []  # noqa: RUF012

        def __init__(self, settings: Mapping[str, str]) -> None:
            super().__init__(settings)

        @property
        def region(self) -> Any:
            return region

        def fetch(self, stream: str, cursor: Cursor | None) -> Page:
            index = int((cursor or {}).get("page", 0))
            records = pages[index] if index < len(pages) else []
            return Page(records=records, cursor={"page": index + 1}, more=index + 1 < len(pages))

        def push_customers(self, records: Sequence[OutboundCustomer]) -> Sequence[PushOutcome]:
            outcomes = []
            for record in records:
                type(self).pushed.append(record)
                outcomes.append(
                    PushOutcome(
                        customer_id=record.customer_id,
                        external_id=record.external_id or f"{name}-{len(type(self).pushed)}",
                        ok=True,
                        action="updated" if record.external_id else "created",
                    )
                )
            return outcomes

        def delete(self, external_ids: Sequence[str]) -> Sequence[PushOutcome]:
            type(self).deleted.extend(external_ids)
            return [
                PushOutcome(customer_id="", external_id=e, ok=True, action="deleted")
                for e in external_ids
            ]

    Static.__name__ = f"Static_{name}"
    return Static


@contextmanager
def plugged(*classes: type[Connector]) -> Iterator[None]:
    """Register ``classes`` as one plugin for the duration of the block."""

    class Plugin:
        @hookimpl
        def vault_register_connectors(self) -> list[type[Connector]]:
            return list(classes)

    manager = plugins.get_plugin_manager()
    name = "test-static-" + "-".join(c.info.name for c in classes)
    manager.register(Plugin(), name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)
