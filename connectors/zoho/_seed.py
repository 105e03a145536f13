"""Seed data of the Zoho sandbox: Latin-name contacts with real-format phones and emails (the
Chinese ones come from :mod:`vault.synthetic`), and CN mobiles written as people type them."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

_LATIN_GIVEN = (  # noqa: SIM905  (a word list reads better as one string)
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Emma Lukas Sophie Hannah "
    "Olivier Camille Louis Chloé Mateo Lucía Giulia Marco Anna Jan Eva Noah Mia Oliver "
    "Amelia Ivan Olga"
).split()
_LATIN_FAMILY = (  # noqa: SIM905  (a word list reads better as one string)
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Wilson Taylor Anderson Thomas "
    "Moore Martin Jackson Müller Schmidt Schneider Fischer Weber Meyer Dubois Lefèvre "
    "Moreau Laurent Rossi Russo Bianchi Romano García Fernández López Martínez Novak "
    "Kowalski Ivanova O'Brien"
).split()
_LATIN_DOMAINS = ("gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "orange.fr", "icloud.com")


def latin_contact(rng: random.Random, index: int) -> dict[str, Any]:
    given = rng.choice(_LATIN_GIVEN)
    family = rng.choice(_LATIN_FAMILY)
    serial = (index * 7919 + 104_729) % 10**8  # unique per index: 7919 is prime to 10**8
    country = rng.choice(("US", "UK", "DE"))
    if country == "US":
        phone = f"+1 415-{200 + serial // 10_000 % 800:03d}-{serial % 10_000:04d}"
        city, state, zip_code, nation = "San Francisco", "CA", f"94{serial % 200:03d}", "USA"
        street = f"{1 + serial % 999} Market Street"
    elif country == "UK":
        phone = f"+44 {7000 + serial // 1_000_000} {serial % 1_000_000:06d}"  # 07000-07099: valid
        city, state, zip_code, nation = "London", None, "EC1A 1BB", "United Kingdom"
        street = f"{1 + serial % 200} Baker Street"
    else:
        phone = f"+49 151 {serial:08d}"
        city, state, zip_code, nation = "Berlin", "Berlin", f"10{serial % 1000:03d}", "Germany"
        street = f"Friedrichstraße {1 + serial % 200}"
    local = f"{given}.{family}".lower().replace("'", "")
    return {
        "Salutation": rng.choice(("Mr.", "Ms.", "Mrs.", "Dr.", None)),
        "First_Name": given,
        "Last_Name": family,
        "Email": f"{local}.{index}@{rng.choice(_LATIN_DOMAINS)}",
        "Mobile": phone,
        "Mailing_Street": street,
        "Mailing_City": city,
        "Mailing_State": state,
        "Mailing_Zip": zip_code,
        "Mailing_Country": nation,
        "Date_of_Birth": (
            (date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))).isoformat()
            if rng.random() < 0.5
            else None
        ),
    }


def cn_phone(rng: random.Random, phone: str) -> str:
    """A CN mobile written as people type it into a CRM."""
    style = rng.random()
    if style < 0.4:
        return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
    if style < 0.8:
        return phone
    return f"+86-{phone[:3]}-{phone[3:7]}-{phone[7:]}"
