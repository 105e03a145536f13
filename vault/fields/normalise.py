"""Normalisers: one canonical form per value, so that equal values give equal blind indexes.

Phone numbers go to E.164 with +86 as the default region (``phonenumbers``) and must be valid
numbers (``is_valid_number``: a number of a range in use, not only of a possible length, so
``12345`` is refused rather than stored as ``+8612345``), emails are trimmed
and lower-cased, ID numbers are compacted with an upper-case ``X`` and their check digit and
birth date verified (``python-stdnum``). A value holding ``*`` is a platform's mask
(``138****8000``, ``张*``): it is kept as given, flagged masked, and never indexed.

Errors name the field and the reason, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import phonenumbers
from stdnum.cn import ric

from vault.errors import InvalidValue

DEFAULT_REGION = "CN"
MASK_CHARACTER = "*"

# Mainland mobiles in any common writing (``138 0013 8000``, ``+86 138-0013-8000``,
# ``8613800138000``) whose number is in a mobile range of phonenumbers' own metadata take this
# path; ``phonenumbers`` gives the same E.164 form and the same validity for all of them
# (tests/fields/test_normalise.py proves it) at a tenth of the cost. The others go the long way.
_SEPARATORS = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")


def _mobile_ranges(region: str) -> re.Pattern[str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    mobile = None if metadata is None else metadata.mobile
    pattern = None if mobile is None else mobile.national_number_pattern
    if not pattern:  # (a phonenumbers without the region's metadata: refuse to guess)
        raise ImportError(f"phonenumbers has no mobile number ranges for {region}")
    return re.compile(str(pattern))


_CN_MOBILE_RANGES = _mobile_ranges(DEFAULT_REGION)
_MASKED_PHONE = re.compile(r"\+?[\d*]{3,}")
_DIALABLE = re.compile(r"\+?\d{3,20}")


@dataclass(frozen=True, slots=True)
class Normalised:
    value: str
    masked: bool = False


def _text(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def _compatible(value: str) -> str:
    """NFKC: full-width digits and letters (１３８, ｘ, ＠), as Chinese input methods type them,
    become ASCII, so ``１３８００１３８０００`` and ``13800138000`` are one value."""
    return unicodedata.normalize("NFKC", value).strip()


def normalise_phone(value: str, field: str = "phone") -> Normalised:
    text = _compatible(value)
    compact = _SEPARATORS.sub("", text)
    if MASK_CHARACTER in compact:
        if not _MASKED_PHONE.fullmatch(compact):
            raise InvalidValue(field=field, reason="not a phone number or a masked phone number")
        return Normalised(compact, masked=True)
    match = _CN_MOBILE.fullmatch(compact)
    if match and _CN_MOBILE_RANGES.fullmatch(match.group(1)):
        return Normalised("+86" + match.group(1))
    if not _DIALABLE.fullmatch(compact):  # phonenumbers would read letters as a keypad's digits
        raise InvalidValue(field=field, reason="not a phone number")
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidValue(field=field, reason="not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidValue(field=field, reason="not a possible phone number for its region")
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(field=field, reason="not a valid phone number (no such number range)")
    return Normalised(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(value: str, field: str = "email") -> Normalised:
    text = _compatible(value).lower()
    local, at, domain = text.rpartition("@")
    if MASK_CHARACTER in text:
        return Normalised(text, masked=True)
    if not at or not local or "." not in domain or " " in text or domain.startswith("."):
        raise InvalidValue(field=field, reason="not an email address")
    return Normalised(text)


def normalise_id_number(value: str, field: str = "id_number") -> Normalised:
    """A mainland resident ID (18 characters): check digit and birth date verified.

    The birth-place code is not checked against a table: people keep the county code of their
    birth, and counties are merged and renamed every year.
    """
    text = _SEPARATORS.sub("", _compatible(value)).upper()
    if MASK_CHARACTER in text:
        return Normalised(text, masked=True)
    if len(text) != 18 or not text[:17].isdigit():
        raise InvalidValue(field=field, reason="a resident ID number has 18 characters")
    if text[17] != ric.calc_check_digit(text):
        raise InvalidValue(field=field, reason="the check digit does not match")
    try:
        date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:  # (stdnum's get_birth_date does the same, at ten times the cost)
        raise InvalidValue(field=field, reason="the birth date in it is not a date") from None
    return Normalised(text)


def normalise_date(value: str, field: str = "date") -> Normalised:
    text = _text(value)
    try:
        return Normalised(date.fromisoformat(text).isoformat())
    except ValueError:
        raise InvalidValue(field=field, reason="not a date in YYYY-MM-DD form") from None


def normalise_text(value: str, field: str = "text") -> Normalised:
    return Normalised(_text(value))


def normalise_name(value: str, field: str = "name") -> Normalised:
    """A person's name or nickname; platforms hand these out masked (``张*``, ``j***n``)."""
    text = _text(value)
    return Normalised(text, masked=MASK_CHARACTER in text)


def normalise_address(value: str, field: str = "address") -> Normalised:
    """A postal address; shops hand out receivers' addresses with the street masked
    (``广东省深圳市南山区****``): a run of two or more ``*`` marks the value masked, so it is
    kept as given and never overwrites a full address."""
    text = _text(value)
    return Normalised(text, masked=MASK_CHARACTER * 2 in text)


def normalise_casefold(value: str, field: str = "text") -> Normalised:
    return Normalised(_text(value).casefold())


NORMALISERS: dict[str, Callable[[str, str], Normalised]] = {
    "phone": normalise_phone,
    "email": normalise_email,
    "id_number": normalise_id_number,
    "date": normalise_date,
    "text": normalise_text,
    "name": normalise_name,
    "address": normalise_address,
    "casefold": normalise_casefold,
}
