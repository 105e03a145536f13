"""The Zoho plugin registers through the entry point; `vault sandbox zoho` runs its emulator."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

import connectors.zoho
from connectors.zoho import ZohoConnector
from vault.cli.sandbox import sandbox_class
from vault.plugins import connector_classes, plugin_load_errors


def test_zoho_is_registered_through_the_vault_entry_point() -> None:
    cls, plugin = connector_classes()["zoho"]
    assert cls is ZohoConnector and plugin == "zoho"
    assert "zoho" not in plugin_load_errors()
    assert sandbox_class("zoho").__name__ == "ZohoSandbox"


def test_public_names_are_pinned() -> None:
    assert connectors.zoho.__all__ == [
        "DATA_CENTRES",
        "DEFAULT_FIELD_MAPS",
        "DataCentre",
        "FieldMap",
        "ZohoClient",
        "ZohoConnector",
    ]


def test_vault_sandbox_zoho_prints_one_json_line_a_client_can_use() -> None:
    command = [sys.executable, "-m", "vault.cli", "sandbox", "zoho", "--port", "0",
               "--records", "25", "--seed", "4"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        announced = json.loads(line)
        assert announced["sandbox"] == "zoho"
        assert announced["accounts_url"].startswith("http://127.0.0.1:")
        assert announced["api_url"] == announced["accounts_url"]
        credentials = announced["credentials"]
        settings = {
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
            "refresh_token": credentials["refresh_token"],
            "data_centre": "CN",
            "accounts_url": announced["accounts_url"],
            "api_url": announced["api_url"],
        }
        connector = ZohoConnector(settings)
        page = connector.fetch("customers", None)
        assert len(page.records) == 25 and not page.more
        connector.close()
        assert httpx.get(f"{announced['api_url']}/crm/v8/org").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
