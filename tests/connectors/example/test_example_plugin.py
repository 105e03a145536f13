"""The example of connectors/README.md, installed as a third party installs a connector: a
distribution of its own whose ``vault`` entry point names ``acme_shop.plugin``. It is found by
the plugin manager, its sandbox by ``vault sandbox acme``, and it syncs through the kit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.sync.sync_dist import make_distribution, on_path
from vault.plugins import connector_classes, sandbox_class
from vault.session import Session

EXAMPLE = Path(__file__).resolve().parent  # holds the acme_shop package


def test_the_readme_example_installs_by_entry_point_and_syncs_through_the_kit(
    admin: Session, tmp_path: Path
) -> None:
    site = make_distribution(tmp_path / "site", "acme_shop", {"acme": "acme_shop.plugin"}, {})
    with on_path(site, EXAMPLE):
        assert connector_classes()["acme"][1] == "acme"  # the entry point's name
        emulator = sandbox_class("acme")
        with emulator(seed=1) as sandbox:
            settings = {**sandbox.credentials(), "base_url": sandbox.url}
            admin.configure_connector("acme", settings)
            first = admin.sync("acme")
            assert (first.pulled, first.created) == (12, 12)
            assert admin.find_by_identity("acme", "acme-11") is not None
            sandbox.expire_tokens()  # the next call is refused once: the TokenSlot renews it
            again = admin.sync("acme")
            assert again.created == 0
            assert sandbox.token_calls == 2  # reused within a sync, renewed once when refused
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE)])}
    listed = subprocess.run(
        [sys.executable, "-m", "vault.cli", "connectors", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    names = {c["name"] for c in json.loads(listed.stdout)["connectors"]}
    assert "acme" in names
