"""Files of PII on disk: private (0600) and complete, or absent.

:func:`private_file` writes into a temporary file created 0600 (``mkstemp``) in the target's
directory and renames it onto the target only when the block ends without error, after an
``fsync``: a failure, Ctrl-C or ``kill -9`` mid-way never leaves a partial file under the
target's name, and what is left of a killed run (a ``.NAME.*.part`` file) is readable by its
owner only. The rename is atomic on one file system, so a reader sees the whole file or none.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PART_SUFFIX = ".part"


@contextlib.contextmanager
def private_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """``with private_file(path) as out: out.write(...)``: ``path`` appears, mode 0600, only
    once the block has finished; on any error the temporary file is removed."""
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=PART_SUFFIX, dir=target.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(target.parent)


def write_private(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`private_file`."""
    with private_file(path) as handle:
        handle.write(data)
    return Path(path)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform opens a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
