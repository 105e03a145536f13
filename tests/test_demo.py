"""`vault demo`, the first command a new user runs, shows the product working end to end."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from vault import Vault
from vault.audit import AuditQuery
from vault.cli import cli


def test_demo_creates_a_vault_finds_a_customer_and_audits_everything(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(target), "--customers", "60"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "60 customers" in out and "Finding a customer by phone written as '+86 " in out
    assert "****" in out and "(hidden)" in out  # the support agent's masked view
    assert "Reading it for marketing is refused" in out
    assert "holds exactly the" in out and "manifest" in out  # the consented export
    assert "created 2, merged 1" in out and "rejected 1" in out  # the file import step
    assert "`vault sync youzan`" in out and "as principal connector-youzan" in out  # a shop
    assert "Segments from" in out and "by tier:" in out  # RFM tiers and stages
    assert "The HTTP API" in out and "→ 200" in out  # the service
    assert f"The vault lives in {target}" in out
    token = out.split("admin token (shown once): ")[1].split()[0]
    with Vault.open(target) as vault:
        admin = vault.session(token, purpose="administration")
        # 60 generated, 2 new ones from the demo's file import (its third row joins one), and
        # the buyers of the Youzan sandbox's shop
        synced = admin.sync_status()
        assert sorted(s["connector"] for s in synced) == ["file_import", "youzan"]
        assert len(admin.list_customers(limit=1000).customer_ids) > 62
        assert admin.audit_verify().ok
        denied = admin.audit_query(AuditQuery(outcome="denied"))
        assert [e["actor"] for e in denied] == ["support-agent"]
