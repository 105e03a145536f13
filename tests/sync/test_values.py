"""Money and China time, written once for every shop connector (vault/sync/values.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vault.errors import PlatformProtocolError
from vault.sync.values import china_text, china_time, yuan_to_fen


def test_yuan_become_exact_fen_and_an_absent_amount_only_counts_when_allowed() -> None:
    assert [yuan_to_fen(v, field="f", connector="c") for v in ("12.90", 0.5, 3, "-1.05")] == [
        1290,
        50,
        300,
        -105,
    ]
    assert yuan_to_fen(None, field="f", connector="c", missing=0) == 0
    with pytest.raises(PlatformProtocolError, match="f is not an amount"):
        yuan_to_fen("", field="f", connector="c")


@pytest.mark.parametrize("bad", ["1.234", "abc", "Infinity", "-inf", "NaN", True, [1]])
def test_what_is_not_an_amount_is_a_protocol_error_naming_the_field(bad: object) -> None:
    with pytest.raises(PlatformProtocolError, match="payment"):
        yuan_to_fen(bad, field="payment", connector="taobao")


def test_china_time_reads_and_writes_utc_plus_8() -> None:
    moment = china_time("2027-01-01 00:30:00", field="t", connector="c")
    assert moment == datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert china_text(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == "2027-01-01 00:30:00"
    with pytest.raises(ValueError, match="naive"):
        china_text(datetime(2026, 12, 31, 16, 30))
