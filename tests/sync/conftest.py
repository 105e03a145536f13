"""Fixtures of the sync tests: the toy platform registered as a plugin, running on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sync_toyshop

from vault import plugins
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=0.2)


@pytest.fixture
def toyshop_plugin() -> Iterator[None]:
    manager = plugins.get_plugin_manager()
    manager.register(sync_toyshop, name="test-toyshop")
    try:
        yield
    finally:
        manager.unregister(name="test-toyshop")


@pytest.fixture
def toyshop(toyshop_plugin: None) -> Iterator[sync_toyshop.ToyShopSandbox]:
    with sync_toyshop.ToyShopSandbox(seed=3, records=60) as sandbox:
        assert isinstance(sandbox, sync_toyshop.ToyShopSandbox)
        yield sandbox


@pytest.fixture
def fast_retries(vault: Vault) -> Vault:
    vault.sync_policy = FAST
    return vault
