"""Map SQLAlchemy's errors to the vault's, at one boundary (compare httpx's transport mapping)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from vault.errors import Conflict, StoreError


@contextmanager
def mapped_store_errors(what: str) -> Iterator[None]:
    """Re-raise database errors as ``Conflict`` or ``StoreError``; the message names ``what``.

    The driver's own message is left out: it can quote the offending row's values.
    """
    try:
        yield
    except exc.IntegrityError as error:
        raise Conflict(f"{what}: a uniqueness or reference rule of the store was broken") from error
    except exc.OperationalError as error:
        raise StoreError(
            f"{what}: the database is unavailable or refused the operation "
            f"({type(error.orig).__name__})"
        ) from error
    except exc.DBAPIError as error:
        raise StoreError(f"{what}: database error ({type(error.orig).__name__})") from error
