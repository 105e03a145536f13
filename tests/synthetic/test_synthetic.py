"""The synthetic customers: deterministic, lazy, unique where it matters, and valid by the same
libraries the vault itself validates with (phonenumbers, python-stdnum)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from functools import cache
from importlib.resources import files
from itertools import islice

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from vault.synthetic import SyntheticCustomer, generate_customers

REFERENCE_DATE = date(2026, 1, 1)
EMAIL = re.compile(r"[a-z0-9._]+@(qq\.com|163\.com|126\.com|gmail\.com|outlook\.com|sina\.com)")
COMPOUND_SURNAMES = "欧阳 司马 上官 诸葛 东方 皇甫 慕容 令狐 夏侯 司徒 公孙 尉迟"
HAN = re.compile(r"[\u4e00-\u9fff]+")


@cache
def packaged_rows() -> tuple[dict[str, str], ...]:
    """The extract as shipped, read the way a user's installation would read it."""
    text = files("vault.synthetic").joinpath("data/divisions.csv").read_text(encoding="utf-8")
    return tuple(csv.DictReader(text.splitlines()))


def locality(row: dict[str, str]) -> str:
    parts = [row["province"]]
    for part in (row["city"], row["county"]):
        if part != parts[-1]:
            parts.append(part)
    return "".join(parts)


@pytest.fixture(scope="module")
def many() -> list[SyntheticCustomer]:
    return list(generate_customers(50_000, seed=2024))


def age_on(birthday: date, day: date) -> int:
    return day.year - birthday.year - ((day.month, day.day) < (birthday.month, birthday.day))


def assert_well_formed(person: SyntheticCustomer) -> None:
    number = phonenumbers.parse(person.phone, "CN")
    assert re.fullmatch(r"1\d{10}", person.phone)
    assert phonenumbers.is_valid_number_for_region(number, "CN"), person.phone
    assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE, person.phone

    assert ric.validate(person.id_number) == person.id_number
    assert ric.get_birth_date(person.id_number).isoformat() == person.birthday
    male = int(person.id_number[16]) % 2 == 1
    assert person.gender == ("male" if male else "female")
    assert 18 <= age_on(date.fromisoformat(person.birthday), REFERENCE_DATE) <= 75

    assert EMAIL.fullmatch(person.email), person.email
    assert HAN.fullmatch(person.name) and 2 <= len(person.name) <= 4, person.name
    assert person.address.startswith(person.province)
    assert person.city == person.province or person.address.startswith(
        person.province + person.city
    )


# --- determinism and laziness ------------------------------------------------------------------


def test_the_same_seed_gives_the_same_customers() -> None:
    assert list(generate_customers(300, seed=11)) == list(generate_customers(300, seed=11))


def test_a_shorter_stream_is_the_start_of_a_longer_one() -> None:
    assert list(generate_customers(50, seed=5)) == list(islice(generate_customers(500, seed=5), 50))


def test_different_seeds_give_different_customers() -> None:
    first = list(generate_customers(200, seed=1))
    second = list(generate_customers(200, seed=2))
    assert len({p.phone for p in first} & {p.phone for p in second}) < 5
    assert sum(a.name == b.name for a, b in zip(first, second, strict=True)) < 20
    assert sum(a.id_number == b.id_number for a, b in zip(first, second, strict=True)) == 0


def test_the_default_seed_is_zero() -> None:
    assert list(generate_customers(20)) == list(generate_customers(20, seed=0))


def test_the_generator_is_lazy() -> None:
    stream = generate_customers(10_000_000, seed=3)
    assert isinstance(stream, Iterator)
    assert not isinstance(stream, list | tuple)
    assert iter(stream) is stream
    # Only what is asked for is made: the first customer of a ten-million stream comes at once.
    assert next(stream) == next(generate_customers(1, seed=3))


def test_zero_customers_is_an_empty_stream() -> None:
    assert list(generate_customers(0)) == []


@pytest.mark.parametrize("count", [-1, 1.5, "10", True])
def test_a_bad_count_is_refused_before_iteration(count: object) -> None:
    with pytest.raises(ValueError, match="count"):
        generate_customers(count)  # type: ignore[arg-type]


def test_a_count_beyond_the_uniqueness_guarantee_is_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        generate_customers(10**9)


# --- validity ----------------------------------------------------------------------------------


def test_every_phone_is_a_valid_cn_mobile(many: list[SyntheticCustomer]) -> None:
    for person in many:
        number = phonenumbers.parse(person.phone, "CN")
        assert len(person.phone) == 11 and person.phone.isdigit()
        assert phonenumbers.is_valid_number_for_region(number, "CN"), person.phone
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE


def test_every_id_number_validates_and_encodes_the_birthday_and_gender(
    many: list[SyntheticCustomer],
) -> None:
    for person in many:
        assert ric.validate(person.id_number) == person.id_number
        assert ric.get_birth_date(person.id_number).isoformat() == person.birthday
        assert person.id_number[6:14] == person.birthday.replace("-", "")
        assert person.gender == ("male" if int(person.id_number[16]) % 2 else "female")


def test_id_numbers_begin_with_a_county_code_from_the_extract(
    many: list[SyntheticCustomer],
) -> None:
    codes = {row["area_code"] for row in packaged_rows()}
    assert {person.id_number[:6] for person in many} <= codes


def test_check_digits_include_x() -> None:
    assert any(p.id_number.endswith("X") for p in generate_customers(200, seed=9))


def test_ages_are_18_to_75_on_the_reference_date(many: list[SyntheticCustomer]) -> None:
    ages = {age_on(date.fromisoformat(p.birthday), REFERENCE_DATE) for p in many}
    assert min(ages) == 18 and max(ages) == 75


def test_both_genders_about_equally(many: list[SyntheticCustomer]) -> None:
    males = sum(p.gender == "male" for p in many)
    assert {p.gender for p in many} == {"male", "female"}
    assert 0.45 < males / len(many) < 0.55


def test_names_are_a_surname_and_one_or_two_characters(many: list[SyntheticCustomer]) -> None:
    compound = set(COMPOUND_SURNAMES.split())
    for person in many:
        assert HAN.fullmatch(person.name), person.name
        surname = 2 if person.name[:2] in compound else 1
        assert 1 <= len(person.name) - surname <= 2, person.name
    assert {p.name[:2] for p in many} >= {"欧阳", "司马", "上官"}


def test_emails_are_plausible(many: list[SyntheticCustomer]) -> None:
    for person in many:
        assert EMAIL.fullmatch(person.email), person.email
    domains = {p.email.partition("@")[2] for p in many}
    assert domains == {"qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com"}


def test_phones_emails_and_id_numbers_are_unique(many: list[SyntheticCustomer]) -> None:
    assert len({p.phone for p in many}) == len(many)
    assert len({p.email for p in many}) == len(many)
    assert len({p.id_number for p in many}) == len(many)


# --- addresses and the packaged extract --------------------------------------------------------


def test_addresses_begin_with_their_province_and_lie_in_a_packaged_county(
    many: list[SyntheticCustomer],
) -> None:
    counties: dict[tuple[str, str], list[str]] = {}
    for row in packaged_rows():
        counties.setdefault((row["province"], row["city"]), []).append(locality(row))
    for person in many:
        assert person.address.startswith(person.province)
        places = counties[(person.province, person.city)]
        assert any(person.address.startswith(place) for place in places), person.address
        assert person.address.endswith(("号", "室")), person.address


def test_about_70_percent_live_in_the_county_of_their_id_number(
    many: list[SyntheticCustomer],
) -> None:
    by_code = {row["area_code"]: row for row in packaged_rows()}
    at_home = 0
    for person in many:
        row = by_code[person.id_number[:6]]
        at_home += (row["province"], row["city"]) == (person.province, person.city) and (
            person.address.startswith(locality(row))
        )
    assert 0.65 < at_home / len(many) < 0.75


def test_municipalities_read_as_the_province_without_placeholder_cities(
    many: list[SyntheticCustomer],
) -> None:
    beijing = [p for p in many if p.province == "北京市"]
    assert beijing and all(p.city == "北京市" for p in beijing)
    assert all(
        p.address.startswith("北京市") and not p.address.startswith("北京市北京市") for p in beijing
    )
    placeholders = ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划")
    assert not any(p.city in placeholders or "市辖区" in p.address for p in many)


def test_the_packaged_extract_is_one_small_row_per_county() -> None:
    data = files("vault.synthetic").joinpath("data/divisions.csv")
    assert len(data.read_bytes()) < 400_000
    rows = packaged_rows()
    assert len(rows) > 2_800
    assert len({row["area_code"] for row in rows}) == len(rows)
    assert all(re.fullmatch(r"\d{6}", row["area_code"]) for row in rows)
    assert all(len(row["streets"].split("|")) <= 3 for row in rows)
    dongcheng = next(row for row in rows if row["area_code"] == "110101")
    assert (dongcheng["province"], dongcheng["city"], dongcheng["county"]) == (
        "北京市",
        "北京市",
        "东城区",
    )
    assert files("vault.synthetic").joinpath("data/README.md").is_file()


# --- any seed ----------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers())
def test_any_seed_gives_well_formed_customers(seed: int) -> None:
    for person in generate_customers(20, seed=seed):
        assert_well_formed(person)
