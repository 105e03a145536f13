from __future__ import annotations

from vault.log import REDACTED, redact_text, scrub_pii


def test_pii_keys_are_dropped_whatever_their_value() -> None:
    event = scrub_pii(
        None,
        "info",
        {"event": "x", "phone": "+8613800138000", "name": "张三", "customer_id": "c-1", "count": 3},
    )
    assert event == {
        "event": "x",
        "phone": REDACTED,
        "name": REDACTED,
        "customer_id": "c-1",
        "count": 3,
    }


def test_pii_shaped_text_is_redacted_in_any_string() -> None:
    text = redact_text("call 138 0013 8000 or +442079460958, mail z@qq.com, id 11010519491231002X")
    assert "138" not in text and "4420" not in text and "z@qq.com" not in text
    assert "11010519491231002X" not in text
    assert text.count(REDACTED) == 4


def test_ids_and_counts_survive() -> None:
    event = scrub_pii(
        None,
        "info",
        {"event": "customers_added", "customer_id": "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
    )
    assert event["customer_id"] == "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
