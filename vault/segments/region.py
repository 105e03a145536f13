"""Region derivation moved to :mod:`vault.fields.region` (the store derives regions when it
writes an address, and the store sits below the segments); the names stay importable here."""

from vault.fields.region import Region, city_name, province_name, region_of

__all__ = ["Region", "city_name", "province_name", "region_of"]
