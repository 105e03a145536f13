from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import InvalidValue
from vault.fields.normalise import (
    normalise_address,
    normalise_email,
    normalise_id_number,
    normalise_name,
    normalise_phone,
)


@pytest.mark.parametrize(
    "written",
    [
        "138 0013 8000",
        "+86 138-0013-8000",
        "8613800138000",
        "13800138000",
        "(+86) 138.0013.8000",
        "0086 13800138000",
        "  138-0013-8000 ",
    ],
)
def test_every_common_writing_of_a_mobile_gives_one_e164(written: str) -> None:
    assert normalise_phone(written).value == "+8613800138000"


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
prefixes = st.sampled_from(["", "+86", "86", "0086", "+86 "])
separators = st.sampled_from(["", " ", "-"])


@given(mobiles, prefixes, separators)
def test_fast_path_agrees_with_phonenumbers(mobile: str, prefix: str, sep: str) -> None:
    """Same E.164 form for a valid number, and refused exactly when phonenumbers says it is not
    a valid number (``140 0000 0000`` is of a possible length but of no range in use)."""
    written = prefix + sep.join([mobile[:3], mobile[3:7], mobile[7:]])
    parsed = phonenumbers.parse(written, "CN")
    if phonenumbers.is_valid_number(parsed):
        expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        assert normalise_phone(written).value == expected
    else:
        with pytest.raises(InvalidValue):
            normalise_phone(written)


@pytest.mark.parametrize("short", ["12345", "+86 12345", "14000000000", "1234567"])
def test_a_number_of_no_range_in_use_is_refused_not_stored_with_a_country_code(
    short: str,
) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalise_phone(short)
    assert caught.value.reason.startswith("not a")


def test_foreign_numbers_keep_their_country_code() -> None:
    assert normalise_phone("+44 20 7946 0958").value == "+442079460958"
    assert normalise_phone("010-6552 9988").value == "+861065529988"  # a Beijing landline


@pytest.mark.parametrize("bad", ["hello", "12", "+86 999", "138****800x"])
def test_invalid_phone_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalise_phone(bad)
    assert bad not in str(caught.value)


def test_masked_phone_is_kept_as_masked() -> None:
    result = normalise_phone("138****8000")
    assert result.masked and result.value == "138****8000"


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalise_email("  Zhang.San@QQ.COM ").value == "zhang.san@qq.com"


@pytest.mark.parametrize("bad", ["no-at-sign", "a@b", "@qq.com", "a b@qq.com"])
def test_invalid_email_is_refused(bad: str) -> None:
    with pytest.raises(InvalidValue):
        normalise_email(bad)


def test_id_number_gets_upper_case_x() -> None:
    assert normalise_id_number("11010519491231002x").value == "11010519491231002X"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("110105194912310021", "check digit"),
        ("1101051949123", "18 characters"),
        ("110105194913310028", "check digit"),
    ],
)
def test_invalid_id_number_says_why_without_the_number(bad: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason) as caught:
        normalise_id_number(bad)
    assert bad not in str(caught.value)


def test_id_number_with_impossible_birth_date_is_refused() -> None:
    from stdnum.cn import ric

    body = "11010519491331002"  # month 13
    with pytest.raises(InvalidValue, match="birth date"):
        normalise_id_number(body + ric.calc_check_digit(body + "0"))


def test_masked_name_is_flagged() -> None:
    assert normalise_name("张*").masked
    assert not normalise_name("张三").masked


def test_masked_address_is_flagged() -> None:
    assert normalise_address("广东省深圳市南山区****").masked
    assert not normalise_address("广东省深圳市南山区科技园路 1 号").masked


def test_full_width_digits_are_the_same_phone_and_id_number() -> None:
    assert normalise_phone("１３８ ００１３ ８０００").value == "+8613800138000"
    assert normalise_id_number("１１０１０５１９４９１２３１００２ｘ").value == "11010519491231002X"
    assert normalise_email("ＺＨＡＮＧ＠ｑｑ.com").value == "zhang@qq.com"
