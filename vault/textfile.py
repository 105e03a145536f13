"""Untrusted text files (customer and consent CSVs): the encoding, and reading within limits.

A file a user hands to ``vault import`` or ``vault consent import`` may be anything: a CSV in
GB18030 that happens to decode as UTF-8, a gigabyte with no line break, one cell of 200 MB.
Reading it never holds more than the limits below, and each error names the limit it hit, in one
line, without a value of the file:

=========================  ==========  =======================================================
``SAMPLE_BYTES``           4 MiB       the encoding is decided on the file's first bytes
``SNIFF_CHARS``            64 Ki       the delimiter is guessed from the header within these
``MAX_CSV_CELL``           128 Ki      characters in one CSV cell (``csv.field_size_limit``)
``MAX_LINE``               1 Mi        characters in one line of the file
=========================  ==========  =======================================================

Encodings: a UTF-8 or UTF-16 byte-order mark decides. Otherwise the sample must decode as UTF-8
or as GB18030 (a superset of GBK and GB2312, which Chinese spreadsheet exports use). Short GBK
text can also be valid UTF-8 (``史志伟`` in GBK is the bytes of ``ʷ־ΰ`` in UTF-8), so a
sample that decodes both ways is read both ways and the reading that looks like a shop's
customer list wins: UTF-8, unless at least half of its non-ASCII characters are ones such a file
does not hold (modifier letters, Hebrew, Greek, C1 controls, accented letters outside a Latin
word, ...) while the GB18030 reading is common Chinese (GB2312's characters). ``--encoding``
overrides the guess.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

SAMPLE_BYTES = 4 * 1024 * 1024
SNIFF_CHARS = 64 * 1024
JUDGED_CHARS = 64 * 1024  # of a sample that decodes both ways, the characters judged
MAX_CSV_CELL = 128 * 1024
MAX_LINE = 1024 * 1024
DELIMITERS = ",\t;"

# One process-wide setting of the csv module; the vault reads no CSV that needs more.
csv.field_size_limit(MAX_CSV_CELL)

# Non-ASCII characters a customer file of a Chinese shop holds: Latin letters with accents,
# punctuation and symbols, CJK (with kana, hangul, full-width forms) and emoji (nicknames).
_EXPECTED = (
    (0x00A0, 0x00BF),  # Latin-1 punctuation and symbols (¥, °, ·, ...)
    (0x2000, 0x27BF),  # punctuation, currency, letterlike, numbers, arrows, symbols, dingbats
    (0x2E80, 0x9FFF),  # CJK radicals, punctuation, kana, bopomofo, hangul jamo, ideographs
    (0xAC00, 0xD7AF),  # hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFEFF, 0xFFEF),  # byte-order mark, half- and full-width forms
    (0x1F000, 0x1FAFF),  # emoji and pictographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


class TextUnreadable(Exception):
    """The file cannot be read as text within the limits; the message names the limit or the
    encoding, never a value of the file."""


_LATIN_LETTERS = (0x00C0, 0x024F)  # accented Latin letters: expected inside a Latin word
_NOT_EXPECTED = re.compile(
    "[^\\x00-\\x7f"
    + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in (*_EXPECTED, _LATIN_LETTERS))
    + "]"
)
_LATIN_ALONE = re.compile(
    f"(?<![A-Za-z])[\\U{_LATIN_LETTERS[0]:08x}-\\U{_LATIN_LETTERS[1]:08x}](?![A-Za-z])"
)


def _odd_characters(text: str) -> tuple[int, int]:
    """(non-ASCII characters, those a customer file would not hold). An accented Latin letter
    counts as expected only beside an ASCII letter (``José``, ``Müller``): GBK hanzi read as
    UTF-8 come out as runs of such letters, modifiers, Greek and Hebrew with no ASCII letter
    around them (``ʷ־ΰ``)."""
    foreign = len(text) - len(text.encode("ascii", "ignore"))
    odd = len(_NOT_EXPECTED.findall(text)) + len(_LATIN_ALONE.findall(text))
    return foreign, odd


def _decodes(sample: bytes, encoding: str, *, final: bool) -> str | None:
    try:
        return codecs.getincrementaldecoder(encoding)().decode(sample, final=final)
    except UnicodeDecodeError:
        return None


def _common_chinese(text: str) -> bool:
    """Every character of ``text`` is ASCII or one of GB2312's (common simplified Chinese)."""
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def detect_encoding_of(sample: bytes, *, complete: bool) -> str:
    """The encoding of a file starting with ``sample`` (``complete``: the sample is all of it)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.isascii():
        return "utf-8"
    as_utf8 = _decodes(sample, "utf-8", final=complete)
    as_gb = _decodes(sample, "gb18030", final=complete)
    if as_utf8 is None and as_gb is None:
        raise TextUnreadable("the file is neither UTF-8 nor GB18030/GBK; pass --encoding")
    if as_utf8 is None:
        return "gb18030"
    if as_gb is None:
        return "utf-8"
    # Both readings decode the whole sample; which one is text is judged on its start.
    foreign, odd = _odd_characters(as_utf8[:JUDGED_CHARS])
    if odd and odd * 2 >= foreign and _common_chinese(as_gb[:JUDGED_CHARS]):
        return "gb18030"
    return "utf-8"


def detect_encoding(path: Path) -> str:
    """The encoding of the file at ``path``, from its first :data:`SAMPLE_BYTES`."""
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    return detect_encoding_of(sample, complete=len(sample) < SAMPLE_BYTES)


def check_encoding(name: str) -> str:
    """``name`` if Python knows the encoding; ``TextUnreadable`` otherwise."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise TextUnreadable(f"unknown encoding {name!r}") from None
    return name


def sniff_delimiter(handle: TextIO) -> str:
    """The header's most frequent separator, read from at most :data:`SNIFF_CHARS` characters
    (a file whose first line is a gigabyte costs no more); the handle is put back at its start."""
    start = handle.tell()
    prefix = handle.read(SNIFF_CHARS)
    handle.seek(start)
    first = prefix.split("\n", 1)[0]
    return max(DELIMITERS, key=first.count)


def bounded_lines(handle: TextIO) -> Iterator[str]:
    """The lines of ``handle``, each at most :data:`MAX_LINE` characters (``TextUnreadable``
    naming the line and the limit for a longer one) — what ``csv.reader`` is fed, so that no
    line is read whole into memory first."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise TextUnreadable(
                f"line {number} is longer than {MAX_LINE:,} characters (the limit for one line)"
            )
        yield line


def csv_error(error: csv.Error, where: str) -> TextUnreadable:
    """A ``csv.Error`` as one line naming ``where`` (``"row 7"``, ``"line 7"``) and the cell
    limit when it is that. (The csv module's messages hold no cell values.)"""
    if "field larger than field limit" in str(error):
        return TextUnreadable(
            f"{where}: a cell is longer than {MAX_CSV_CELL:,} characters (the limit for one cell)"
        )
    return TextUnreadable(f"{where} is not valid CSV ({error})")
