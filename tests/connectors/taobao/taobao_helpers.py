"""A running Taobao sandbox and a connector pointed at it, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.taobao.connector import TaobaoConnector
from connectors.taobao.sandbox import TaobaoSandbox


@pytest.fixture
def taobao() -> Iterator[TaobaoSandbox]:
    with TaobaoSandbox(seed=11, records=600) as sandbox:
        assert isinstance(sandbox, TaobaoSandbox)
        yield sandbox


def settings_for(sandbox: TaobaoSandbox, **extra: str) -> dict[str, str]:
    return {**sandbox.credentials(), "base_url": sandbox.url, "settle_seconds": "0", **extra}


@pytest.fixture
def connector(taobao: TaobaoSandbox) -> Iterator[TaobaoConnector]:
    made = TaobaoConnector(settings_for(taobao))
    yield made
    made.close()
