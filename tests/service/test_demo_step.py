"""`vault demo` serves the demo vault over HTTP for one request, audited, and stops."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from vault import Vault
from vault.audit import AuditQuery
from vault.cli import cli


def test_the_demo_looks_a_customer_up_over_http_and_stops_the_server(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(target), "--customers", "30"])
    assert result.exit_code == 0, result.output
    step = result.output.split("10. The HTTP API")[1].split("11. ")[0]
    assert "→ 200: phone " in step and "****" in step
    assert "audited as search, read under that request id" in step
    request_id = re.search(r"request id ([0-9a-f]{32})", step)
    assert request_id is not None
    token = result.output.split("admin token (shown once): ")[1].split()[0]
    with Vault.open(target) as vault:
        admin = vault.session(token, purpose="compliance")
        events = admin.audit_query(AuditQuery(actor="support-agent", limit=None))
        over_http = [e for e in events if e["request_id"] == request_id.group(1)]
        assert [e["action"] for e in over_http] == ["search", "read"]
