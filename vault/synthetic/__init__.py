"""Realistic, deterministic synthetic Chinese customers for demos, tests and benchmarks.

>>> from vault.synthetic import generate_customers
>>> people = list(generate_customers(3, seed=42))

Every field is made up but well formed: a valid CN mobile number, a resident ID number with a
real county code, the birthday and gender it encodes and a correct check digit, and an address
built from the National Bureau of Statistics 2023 division codes packaged in ``data/`` (see
``data/README.md`` for source and licence). The same seed always gives the same customers, and
phones, emails and ID numbers never repeat within one stream.
"""

from vault.synthetic._people import SyntheticCustomer, generate_customers

__all__ = ["SyntheticCustomer", "generate_customers"]
