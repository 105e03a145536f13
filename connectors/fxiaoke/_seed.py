"""Seeded tenant data for the Fenxiang sandbox: accounts and contacts, Chinese and Latin names.

Chinese contacts come from :mod:`vault.synthetic` (valid CN mobiles, real division addresses);
about a fifth are Latin-named contacts of a Hong Kong, German or US branch with phones in those
countries' formats. Deterministic for a seed. Every value is made up.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from vault.synthetic import generate_customers

LATIN_SHARE = 0.2
SEED_EPOCH_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
"""The newest seeded ``last_modified_time``: a fixed past instant, so a seed means the same data
forever and every change a test makes is newer than any seeded record."""
SEED_SPAN_MS = 2 * 365 * 24 * 3600 * 1000  # seeded records were created over two years

_GIVEN = (
    "Emily", "Kelvin", "Grace", "Jason", "Vivian", "Daniel", "Cherry", "Eric", "Karen", "Tony",
    "Lukas", "Anna", "Jonas", "Mia", "Felix", "Olivia", "Ethan", "Sophia", "Noah", "Chloe",
)  # fmt: skip
_FAMILY_HK = ("Chan", "Wong", "Leung", "Cheung", "Lau", "Lee", "Ho", "Ng", "Tsang", "Yeung")
_FAMILY_DE = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann")
_FAMILY_US = ("Smith", "Johnson", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Nguyen")
_DOMAINS_HK = ("gmail.com", "outlook.com", "yahoo.com.hk", "netvigator.com")
_DOMAINS_DE = ("gmx.de", "web.de", "t-online.de", "gmail.com")
_DOMAINS_US = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com")
_CITIES = ("杭州", "上海", "深圳", "成都", "苏州", "南京", "广州", "武汉", "西安", "厦门")
_TRADES = ("云帆", "恒通", "博远", "启明", "华信", "瑞丰", "星河", "金桥", "鼎盛", "新源")
_KINDS = ("科技有限公司", "贸易有限公司", "电子商务有限公司", "服饰有限公司", "食品有限公司")
_JOBS = ("采购经理", "店长", "运营总监", "总经理", "Buyer", "Store manager", "财务")


@dataclass(frozen=True, slots=True)
class SeedContact:
    name: str
    mobile: str | None
    email: str | None
    address: str | None
    birthday: str | None  # YYYY-MM-DD
    gender: str | None  # "1" male, "2" female (the select_one option values)
    job_title: str | None


def accounts(count: int, *, seed: int) -> list[tuple[str, str]]:
    """``count`` (name, tel) pairs of made-up companies."""
    rng = random.Random(f"accounts:{seed}")
    made = []
    for index in range(count):
        city, trade, kind = rng.choice(_CITIES), rng.choice(_TRADES), rng.choice(_KINDS)
        name = (
            f"{city}{trade}{kind}"
            if index < len(_CITIES) * len(_TRADES)
            else (f"{city}{trade}{kind}（{index}）")
        )
        made.append((name, f"0571-8{rng.randrange(10**6, 10**7)}"))
    return made


def contacts(count: int, *, seed: int) -> Iterator[SeedContact]:
    rng = random.Random(f"contacts:{seed}")
    people = generate_customers(count, seed=seed)
    for index, person in enumerate(people):
        if rng.random() < LATIN_SHARE:
            yield _latin(rng, index)
            continue
        yield SeedContact(
            name=person.name,
            mobile=person.phone if rng.random() > 0.05 else None,
            email=person.email if rng.random() > 0.1 else None,
            address=person.address,
            birthday=person.birthday if rng.random() > 0.5 else None,
            gender="1" if person.gender == "male" else "2",
            job_title=rng.choice(_JOBS) if rng.random() > 0.6 else None,
        )


# Four-digit starts of Hong Kong mobile numbers whose whole hundred is allocated: with the
# hundred and the last four digits, 8 x 100 x 10,000 = 8,000,000 numbers, one per ``spread``.
_HK_MOBILE_BLOCKS = (6100, 6300, 6400, 6500, 6900, 9400, 9600, 9700)


def _latin(rng: random.Random, index: int) -> SeedContact:
    given = rng.choice(_GIVEN)
    # Phones unique by construction: the index times a prime, modulo the number space.
    spread = index * 7919 % 8_000_000
    branch = rng.random()
    if branch < 0.5:
        family, domain = rng.choice(_FAMILY_HK), rng.choice(_DOMAINS_HK)
        # Hong Kong mobiles of blocks that phonenumbers (and so the vault) takes as valid
        block = _HK_MOBILE_BLOCKS[spread % len(_HK_MOBILE_BLOCKS)] + spread // 8 % 100
        mobile = f"+852 {block} {spread // 800 % 10000:04d}"
        flat = f"{rng.randrange(1, 40)}{rng.choice('ABCD')}"
        address = f"Flat {flat}, {rng.randrange(1, 300)} Nathan Road, Kowloon"
    elif branch < 0.8:
        family, domain = rng.choice(_FAMILY_DE), rng.choice(_DOMAINS_DE)
        mobile = f"+49 151 {spread % 10**8:08d}"
        address = (
            f"Hauptstraße {rng.randrange(1, 200)}, {rng.randrange(10000, 99999)} Frankfurt am Main"
        )
    else:
        family, domain = rng.choice(_FAMILY_US), rng.choice(_DOMAINS_US)
        mobile = f"+1 415-{200 + spread // 10_000 % 800}-{spread % 10_000:04d}"
        address = f"{rng.randrange(1, 3000)} Market St, San Francisco, CA 94103"
    local = f"{given}.{family}".lower().replace("ü", "ue").replace("ß", "ss")
    return SeedContact(
        name=f"{given} {family}",
        mobile=mobile,
        email=f"{local}{index}@{domain}",
        address=address,
        birthday=None,
        gender=None,
        job_title=rng.choice(_JOBS) if rng.random() > 0.5 else None,
    )
