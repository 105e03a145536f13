"""Map lower-layer errors to the vault's, at one boundary (compare httpx's transport mapping).

:func:`as_vault_error` is the map: SQLAlchemy's and the driver's errors become ``Conflict`` or
``StoreError``, anything else that is not already a ``VaultError`` becomes ``InternalError``.
``Vault._transaction`` applies it to database errors and the door (``Door._audited``) to every
failure of an operation, which it then audits as failed. The driver's own message is left out
everywhere: it can quote the offending row's values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from vault.errors import Conflict, InternalError, StoreError, VaultError


def as_vault_error(error: BaseException, what: str) -> VaultError:
    """``error`` as the ``VaultError`` a caller sees, with a one-line message naming ``what``.

    The caller raises it ``from error``, so the cause stays for ``--debug``."""
    if isinstance(error, VaultError):
        return error
    if isinstance(error, exc.IntegrityError):
        return Conflict(f"{what}: a uniqueness or reference rule of the store was broken")
    if isinstance(error, exc.OperationalError):
        return StoreError(
            f"{what}: the database is unavailable or refused the operation "
            f"({type(error.orig).__name__})"
        )
    if isinstance(error, exc.DBAPIError):
        return StoreError(f"{what}: database error ({type(error.orig).__name__})")
    if isinstance(error, exc.SQLAlchemyError):
        return StoreError(f"{what}: database error ({type(error).__name__})")
    return InternalError(f"{what}: unexpected {type(error).__name__}")


@contextmanager
def mapped_store_errors(what: str) -> Iterator[None]:
    """Re-raise database errors as ``Conflict`` or ``StoreError``; the message names ``what``."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise as_vault_error(error, what) from error
