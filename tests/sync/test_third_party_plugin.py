"""A third-party connector, installed as a distribution of its own, is found and syncs; a
broken plugin is reported by name and does not stop the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sync_dist import make_distribution, on_path

from vault.plugins import connector_classes, plugin_load_errors
from vault.session import Session

ACME = """
from datetime import datetime, timezone

from vault import hookimpl
from vault.sync import Connector, ConnectorInfo, ExternalCustomer, Page


class AcmeCrm(Connector):
    info = ConnectorInfo(
        name="acme",
        platform="acme",
        description="Acme CRM, a third-party plugin",
        pulls=frozenset({"customers"}),
    )

    def fetch(self, stream, cursor):
        start = (cursor or {}).get("n", 0)
        records = [
            ExternalCustomer(
                external_id=f"acme-{n}",
                observed_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                fields={"name": f"客户{n}", "phone": f"1370000{n:04d}"},
            )
            for n in range(start, min(start + 5, 12))
        ]
        return Page(records=records, cursor={"n": start + len(records)}, more=start + 5 < 12)


@hookimpl
def vault_register_connectors():
    return [AcmeCrm]
"""

BROKEN = "raise ImportError('this plugin is broken on purpose')\n"


def test_a_plugin_installed_as_its_own_distribution_is_discovered_and_syncs(
    admin: Session, tmp_path: Path
) -> None:
    root = make_distribution(
        tmp_path / "site",
        "acme_vault_plugin",
        {"acme": "acme_vault_plugin", "broken": "broken_vault_plugin"},
        {"acme_vault_plugin": ACME, "broken_vault_plugin": BROKEN},
    )
    with on_path(root):
        found = connector_classes()
        assert found["acme"][1] == "acme" and "file_import" in found
        assert "broken" in plugin_load_errors()
        assert "ImportError" in plugin_load_errors()["broken"]
        report = admin.sync("acme")
        assert (report.pulled, report.created) == (12, 12)
        assert admin.find_by_identity("acme", "acme-11") is not None
    # and a fresh process, as `vault connectors list` runs, finds it through its metadata
    env = {**os.environ, "PYTHONPATH": str(root)}
    listed = subprocess.run(
        [sys.executable, "-m", "vault.cli", "connectors", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    data = json.loads(listed.stdout)
    assert {"name": "acme", "plugin": "acme"}.items() <= next(
        c for c in data["connectors"] if c["name"] == "acme"
    ).items()
    assert "broken" in data["load_errors"]
